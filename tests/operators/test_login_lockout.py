"""Logins: lockout per account and per address, the same refusal for unknown names, audit rows."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from gateway.domain.operators import LockoutPolicy, Role, SessionPolicy, throttle_keys
from gateway.services.operator_auth import OperatorAuth, current_session, log_in, log_out
from gateway.services.passwords import Passwords
from gateway.store import login_throttle as lockout
from gateway.store import operators as accounts
from gateway.store.models import audit_log

from .helpers import add_operator, cheap_passwords

T0 = datetime(2026, 12, 1, 9, 0)


class Clock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def auth(db, clock):
    return OperatorAuth(
        db=db,
        sessions=SessionPolicy(lifetime=timedelta(hours=12), idle=timedelta(minutes=30)),
        lockout=LockoutPolicy(
            max_failures=3,
            max_failures_per_address=5,
            window=timedelta(minutes=15),
            lock_for=timedelta(minutes=10),
        ),
        passwords=cheap_passwords(),
        now=clock,
    )


def audit_rows(db) -> list[tuple]:
    a = audit_log.c
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(a.action, a.actor, a.target, a.address).order_by(a.id))]


async def test_a_good_login_opens_a_session_and_is_audited(db, auth):
    ana = add_operator(db, "ana", "correct horse", Role.ADMIN)
    outcome = await log_in(auth, " Ana ", "correct horse", "10.0.0.7", "Chromium")
    assert outcome.session.operator == ana and outcome.token and outcome.locked_until is None
    assert await current_session(auth, outcome.token) == outcome.session
    assert audit_rows(db) == [("login", "ana", "operator:ana", "10.0.0.7")]
    with db.engine.connect() as conn:
        assert db.transaction(accounts.find, "ana").operator.id == ana.id
        assert conn.execute(select(audit_log.c.operator_id)).scalar_one() == ana.id
    await log_out(auth, outcome.session, "10.0.0.7")
    assert await current_session(auth, outcome.token) is None
    assert audit_rows(db)[-1] == ("logout", "ana", "operator:ana", "10.0.0.7")


async def test_wrong_unknown_and_disabled_are_refused_alike(db, auth):
    add_operator(db, "ana", "correct horse")
    bob = add_operator(db, "bob", "bob's password")
    db.transaction(accounts.set_disabled, bob.id, True, T0)
    outcomes = [
        await log_in(auth, "ana", "wrong", "10.0.0.7", None),
        await log_in(auth, "nobody", "wrong", "10.0.0.8", None),
        await log_in(auth, "bob", "bob's password", "10.0.0.9", None),
    ]
    assert all(o.session is None and o.token is None and o.locked_until is None for o in outcomes)
    with db.engine.connect() as conn:
        details = conn.execute(select(audit_log.c.detail).order_by(audit_log.c.id)).scalars().all()
    assert [d["reason"] for d in details] == ["password", "unknown", "disabled"]  # only admins see why


async def test_an_account_locks_after_the_limit_even_for_the_right_password(db, auth, clock):
    add_operator(db, "ana", "correct horse")
    for _ in range(2):
        assert (await log_in(auth, "ana", "wrong", "10.0.0.7", None)).locked_until is None
    third = await log_in(auth, "ana", "wrong", "10.0.0.8", None)
    assert third.locked_until == T0 + timedelta(minutes=10)
    refused = await log_in(auth, "ana", "correct horse", "10.0.0.9", None)
    assert refused.session is None and refused.locked_until == T0 + timedelta(minutes=10)
    actions = [row[0] for row in audit_rows(db)]
    assert actions == ["login.failed"] * 3 + ["login.lockout", "login.refused"]
    clock.advance(minutes=10)
    assert (await log_in(auth, "ana", "correct horse", "10.0.0.9", None)).session is not None


async def test_an_unknown_name_locks_just_like_a_real_one(db, auth):
    add_operator(db, "ana", "correct horse")
    real = [await log_in(auth, "ana", "wrong", f"10.0.1.{i}", None) for i in range(3)]
    fake = [await log_in(auth, "anna", "wrong", f"10.0.2.{i}", None) for i in range(3)]
    assert [o.locked_until for o in real] == [o.locked_until for o in fake]
    assert real[-1].locked_until is not None


async def test_failures_outside_the_window_do_not_add_up(db, auth, clock):
    add_operator(db, "ana", "correct horse")
    await log_in(auth, "ana", "wrong", "10.0.0.7", None)
    await log_in(auth, "ana", "wrong", "10.0.0.7", None)
    clock.advance(minutes=15)
    assert (await log_in(auth, "ana", "wrong", "10.0.0.7", None)).locked_until is None  # a new window
    assert (await log_in(auth, "ana", "correct horse", "10.0.0.7", None)).session is not None


async def test_a_good_login_clears_its_account_count_but_not_its_address(db, auth):
    add_operator(db, "ana", "correct horse")
    add_operator(db, "bob", "bob's password")
    for name in ("ana", "ana", "carl", "dora"):  # 4 failures from one address
        await log_in(auth, name, "wrong", "10.0.0.7", None)
    assert (await log_in(auth, "ana", "correct horse", "10.0.0.7", None)).session is not None
    for _ in range(2):  # ana's count starts again from zero
        assert (await log_in(auth, "ana", "wrong", "10.0.0.8", None)).locked_until is None
    locked = await log_in(auth, "bob", "wrong", "10.0.0.7", None)  # the address's fifth failure
    assert locked.locked_until is not None
    assert (await log_in(auth, "bob", "bob's password", "10.0.0.7", None)).session is None
    assert (await log_in(auth, "bob", "bob's password", "10.0.0.8", None)).session is not None
    targets = [row[2] for row in audit_rows(db) if row[0] == "login.lockout"]
    assert targets == ["address:10.0.0.7"]


async def test_a_disabled_operator_s_open_session_stops_working(db, auth):
    ana = add_operator(db, "ana", "correct horse")
    outcome = await log_in(auth, "ana", "correct horse", "10.0.0.7", None)
    db.transaction(accounts.set_disabled, ana.id, True, T0)
    assert await current_session(auth, outcome.token) is None


async def test_a_stored_hash_with_old_parameters_is_upgraded_at_login(db, auth):
    add_operator(db, "ana", "correct horse")
    hasher = PasswordHasher(time_cost=2, memory_cost=128, parallelism=1)
    stronger = OperatorAuth(db, auth.sessions, auth.lockout, passwords=Passwords(hasher), now=auth.now)
    before = db.transaction(accounts.find, "ana").password_hash
    assert (await log_in(stronger, "ana", "correct horse", None, None)).session is not None
    after = db.transaction(accounts.find, "ana").password_hash
    assert after != before and "m=128,t=2" in after


def test_stale_throttle_rows_are_forgotten(db):
    policy = LockoutPolicy(3, 5, timedelta(minutes=15), timedelta(minutes=10))
    db.transaction(lockout.record_failure, throttle_keys("ana", "10.0.0.7"), T0, policy)
    assert db.transaction(lockout.purge_stale, T0 + timedelta(minutes=14), policy) == 0
    assert db.transaction(lockout.purge_stale, T0 + timedelta(minutes=15), policy) == 2
