"""Operators: people with accounts and roles who sign in to the dashboard.

Roles, each allowed what the one before it is: a viewer reads, an operator acts on messages,
broadcasts and carriers, an admin also manages operators' accounts and citizens' data. Names are
case-insensitive. A session ends after ``lifetime`` whatever the activity and after ``idle``
without a request. Failed logins are counted per name as typed and per client address, so a
lockout says nothing about which accounts exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
ACCOUNT, ADDRESS = "account", "address"  # what a failed login is counted against
MAX_KEY_LENGTH = 128


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            choices = ", ".join(r.label for r in cls)
            raise ValueError(f"unknown role {value!r}: expected one of {choices}") from None

    def allows(self, needed: Role) -> bool:
        return self >= needed


class OperatorExists(ValueError):
    pass


class UnknownOperator(LookupError):
    pass


def normalize_username(raw: str) -> str:
    """Names are case-insensitive: stored and looked up in lower case."""
    name = raw.strip().lower()
    if not USERNAME.fullmatch(name):
        raise ValueError(
            f"invalid operator name {raw!r}: 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Operator:
    id: int
    username: str
    role: Role
    disabled: bool


@dataclass(frozen=True)
class SessionPolicy:
    lifetime: timedelta
    idle: timedelta
    touch_every: timedelta = timedelta(minutes=1)  # last_seen_at is written at most this often


@dataclass(frozen=True)
class OperatorSession:
    id: int
    operator: Operator
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class LockoutPolicy:
    """Failures are counted in a window that starts at the first; reaching the limit locks the name
    (or the address) for ``lock_for``."""

    max_failures: int  # per account name
    max_failures_per_address: int
    window: timedelta
    lock_for: timedelta

    def limit(self, scope: str) -> int:
        return self.max_failures if scope == ACCOUNT else self.max_failures_per_address


def throttle_keys(username: str, address: str | None) -> list[tuple[str, str]]:
    """What a login attempt is counted against: the name as typed, and the address if known."""
    found = [(ACCOUNT, username.strip().lower()[:MAX_KEY_LENGTH])]
    if address:
        found.append((ADDRESS, address[:MAX_KEY_LENGTH]))
    return found
