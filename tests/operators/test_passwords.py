"""Operators' passwords: argon2id, verification, re-hashing with stronger parameters, dummy checks."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from gateway.services.passwords import MAX_LENGTH, Passwords, check_new_password

from .helpers import CHEAP


def test_hash_is_argon2id_and_salted():
    passwords = Passwords(CHEAP)
    first, second = passwords.hash("correct horse"), passwords.hash("correct horse")
    assert first.startswith("$argon2id$") and second.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert "correct horse" not in first


def test_verify_accepts_the_password_and_nothing_else():
    passwords = Passwords(CHEAP)
    stored = passwords.hash("correct horse")
    assert passwords.verify(stored, "correct horse") == (True, None)
    assert passwords.verify(stored, "Correct horse") == (False, None)
    assert passwords.verify(stored, "") == (False, None)
    assert passwords.verify("not a hash", "correct horse") == (False, None)
    assert passwords.verify(stored, "x" * (MAX_LENGTH + 1)) == (False, None)


def test_unknown_account_is_checked_against_a_dummy_and_refused():
    assert Passwords(CHEAP).verify(None, "anything at all") == (False, None)


def test_a_hash_with_weaker_parameters_is_replaced_at_the_next_login():
    weak = CHEAP.hash("correct horse")
    stronger = Passwords(PasswordHasher(time_cost=2, memory_cost=128, parallelism=1))
    ok, new_hash = stronger.verify(weak, "correct horse")
    assert ok and new_hash is not None and new_hash != weak
    assert stronger.verify(new_hash, "correct horse") == (True, None)


def test_the_default_parameters_are_rfc_9106_low_memory():
    params = Passwords().hasher
    assert (params.time_cost, params.memory_cost, params.parallelism) == (3, 65536, 4)


async def test_verification_runs_off_the_event_loop():
    passwords = Passwords(CHEAP)
    stored = passwords.hash("correct horse")
    assert await passwords.verify_async(stored, "correct horse") == (True, None)


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [("short", "at least 8"), (" " * 9, "only spaces"), ("y" * (MAX_LENGTH + 1), "at most")],
)
def test_new_passwords_are_checked(candidate, reason):
    with pytest.raises(ValueError, match=reason):
        check_new_password(candidate)
    assert check_new_password("eight ch") == "eight ch"
