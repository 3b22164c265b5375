"""Operators' passwords: argon2id hashes (argon2-cffi), verified off the event loop.

Verification costs about 64 MiB of memory and tens of milliseconds by design; a semaphore keeps a
burst of logins from exhausting a small server.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 256  # hashing cost grows with length: refuse absurd inputs before hashing


def check_new_password(password: str) -> str:
    """A password an operator may choose; raises ValueError saying what is wrong."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"the password must have at most {MAX_LENGTH} characters")
    if not password.strip():
        raise ValueError("the password must not be only spaces")
    return password


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None, concurrency: int = 2):
        self.hasher = hasher or PasswordHasher()  # RFC 9106 low-memory profile: t=3, m=64 MiB, p=4
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> tuple[bool, str | None]:
        """(matches, a new hash when the stored one uses weaker parameters than ours).

        Without a stored hash (an unknown account) a dummy hash is verified all the same, so the
        answer takes as long as for a real account and does not tell which names exist.
        """
        if password_hash is None:
            if self._dummy is None:
                self._dummy = self.hasher.hash("no such operator")
            self._check(self._dummy, password)
            return False, None
        if len(password) > MAX_LENGTH or not self._check(password_hash, password):
            return False, None
        if self.hasher.check_needs_rehash(password_hash):
            return True, self.hasher.hash(password)
        return True, None

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password[:MAX_LENGTH])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify_async(self, password_hash: str | None, password: str) -> tuple[bool, str | None]:
        async with self._slots:
            return await asyncio.to_thread(self.verify, password_hash, password)
