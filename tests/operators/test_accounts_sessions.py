"""Accounts and server-side sessions in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.domain.operators import OperatorExists, Role, SessionPolicy, UnknownOperator
from gateway.store import operator_sessions as sessions
from gateway.store import operators as accounts
from gateway.store.models import operator_sessions
from gateway.store.operator_sessions import token_digest

from .helpers import CHEAP, add_operator

T0 = datetime(2026, 12, 1, 9, 0)
POLICY = SessionPolicy(
    lifetime=timedelta(hours=12), idle=timedelta(minutes=30), touch_every=timedelta(minutes=1)
)


def test_names_are_case_insensitive_and_unique(db):
    ana = add_operator(db, "Ana.Lopez", "correct horse", Role.ADMIN)
    assert (ana.username, ana.role, ana.disabled) == ("ana.lopez", Role.ADMIN, False)
    assert db.transaction(accounts.find, "ANA.LOPEZ ").operator == ana
    with pytest.raises(OperatorExists):
        add_operator(db, "ana.lopez", "another one")
    with pytest.raises(ValueError, match="invalid operator name"):
        add_operator(db, "ana lopez", "correct horse")
    with pytest.raises(UnknownOperator):
        db.transaction(accounts.get, "nobody")


def test_roles_allow_what_the_roles_below_them_do():
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.ADMIN.allows(Role.VIEWER)
    assert Role.OPERATOR.allows(Role.VIEWER) and not Role.OPERATOR.allows(Role.ADMIN)
    assert not Role.VIEWER.allows(Role.OPERATOR)
    assert Role.parse(" Admin ") is Role.ADMIN
    with pytest.raises(ValueError, match="viewer, operator, admin"):
        Role.parse("root")


def _open(db, operator, now=T0):
    return db.transaction(sessions.open_session, operator, now, POLICY, "10.0.0.7", "Chromium")


def test_the_database_holds_the_token_s_hash_not_the_token(db):
    ana = add_operator(db, "ana", "correct horse")
    token, session = _open(db, ana)
    with db.engine.connect() as conn:
        stored = conn.execute(select(operator_sessions.c.token_hash, operator_sessions.c.address)).one()
    assert stored.token_hash == token_digest(token) != token
    assert stored.address == "10.0.0.7"
    assert len(token) >= 43 and session.csrf_token != token
    loaded = db.transaction(sessions.load, token, T0 + timedelta(seconds=1), POLICY)
    assert loaded == session
    assert db.transaction(sessions.load, token + "x", T0, POLICY) is None
    assert db.transaction(sessions.load, "", T0, POLICY) is None


def test_a_session_ends_at_its_lifetime_whatever_the_activity(db):
    ana = add_operator(db, "ana", "correct horse")
    token, _ = _open(db, ana)
    now = T0
    while now < T0 + POLICY.lifetime - timedelta(minutes=20):  # a request every 20 minutes
        now += timedelta(minutes=20)
        assert db.transaction(sessions.load, token, now, POLICY) is not None
    assert db.transaction(sessions.load, token, T0 + POLICY.lifetime, POLICY) is None
    assert db.transaction(sessions.load, token, now, POLICY) is None  # and it was deleted


def test_a_session_ends_after_the_idle_time_and_requests_keep_it_alive(db):
    ana = add_operator(db, "ana", "correct horse")
    token, _ = _open(db, ana)
    assert db.transaction(sessions.load, token, T0 + timedelta(minutes=29), POLICY) is not None
    assert (
        db.transaction(sessions.load, token, T0 + timedelta(minutes=58), POLICY) is not None
    )  # touched at 29
    assert db.transaction(sessions.load, token, T0 + timedelta(minutes=88), POLICY) is None


def test_last_seen_is_written_at_most_once_a_minute(db):
    ana = add_operator(db, "ana", "correct horse")
    token, _ = _open(db, ana)

    def last_seen():
        with db.engine.connect() as conn:
            return conn.execute(select(operator_sessions.c.last_seen_at)).scalar_one()

    db.transaction(sessions.load, token, T0 + timedelta(seconds=30), POLICY)
    assert last_seen() == T0
    db.transaction(sessions.load, token, T0 + timedelta(seconds=61), POLICY)
    assert last_seen() == T0 + timedelta(seconds=61)


def test_disabling_an_operator_ends_their_sessions(db):
    ana = add_operator(db, "ana", "correct horse")
    token, _ = _open(db, ana)
    other, _ = _open(db, ana)
    db.transaction(accounts.set_disabled, ana.id, True, T0)
    assert db.transaction(sessions.load, token, T0, POLICY) is None  # refused even before close_all
    assert db.transaction(sessions.close_all, ana.id) == 1  # the one not yet looked at
    assert db.transaction(sessions.load, other, T0, POLICY) is None


def test_expired_sessions_are_purged(db):
    ana = add_operator(db, "ana", "correct horse")
    _open(db, ana, T0)
    live, _ = _open(db, ana, T0 + timedelta(hours=1))
    assert db.transaction(sessions.purge_expired, T0 + timedelta(minutes=45), POLICY) == 1
    assert db.transaction(sessions.load, live, T0 + timedelta(hours=1, minutes=1), POLICY) is not None


def test_password_change_and_rehash_are_stored(db):
    ana = add_operator(db, "ana", "correct horse")
    db.transaction(accounts.set_password, ana.id, CHEAP.hash("new battery staple"), T0)
    stored = db.transaction(accounts.find, "ana").password_hash
    assert CHEAP.verify(stored, "new battery staple")
    assert db.transaction(accounts.active_count) == 1
