"""Operators signing in and out: password check, lockout, a new server-side session, the audit
entries; and the session of a cookie's token.

Every answer to a refused login is the same whether the name exists, is disabled or the password
is wrong; only the audit log (read by admins) says which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from config.settings import DashboardSettings
from gateway import clock
from gateway.domain.operators import LockoutPolicy, OperatorSession, SessionPolicy, throttle_keys
from gateway.store import login_throttle, operator_sessions
from gateway.store import operators as accounts
from gateway.store.audit import record
from gateway.store.db import Database

from .passwords import Passwords


@dataclass
class OperatorAuth:
    """What signing in needs: the database, the session and lockout policies, the password hasher."""

    db: Database
    sessions: SessionPolicy
    lockout: LockoutPolicy
    secure_cookies: bool = False  # Secure cookies even over plain HTTP (TLS ends at a proxy)
    trust_forwarded_for: bool = False  # the client address is the last X-Forwarded-For entry
    passwords: Passwords = field(default_factory=Passwords)
    now: Callable[[], datetime] = clock.utcnow

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: DashboardSettings,
        passwords: Passwords | None = None,
        now: Callable[[], datetime] = clock.utcnow,
    ) -> OperatorAuth:
        return cls(
            db=db,
            sessions=SessionPolicy(
                lifetime=timedelta(hours=settings.session_hours),
                idle=timedelta(minutes=settings.idle_minutes),
            ),
            lockout=LockoutPolicy(
                max_failures=settings.max_failures,
                max_failures_per_address=settings.max_failures_per_address,
                window=timedelta(minutes=settings.failure_window_minutes),
                lock_for=timedelta(minutes=settings.lockout_minutes),
            ),
            secure_cookies=settings.secure_cookies,
            trust_forwarded_for=settings.trust_forwarded_for,
            passwords=passwords or Passwords(),
            now=now,
        )


@dataclass(frozen=True)
class LoginOutcome:
    session: OperatorSession | None = None
    token: str | None = None  # the cookie's value; only when signed in
    locked_until: datetime | None = None  # refused: too many failures


def _check_lock(
    conn: Connection, username: str, address: str | None, now: datetime
) -> tuple[datetime | None, accounts.Account | None]:
    """(the lock in force, or None and the account of that name if there is one)."""
    until = login_throttle.locked_until(conn, throttle_keys(username, address), now)
    if until is not None:
        record(
            conn,
            now,
            "login.refused",
            username,
            target=f"operator:{username}",
            detail={"reason": "locked", "until": until.isoformat()},
            address=address,
        )
        return until, None
    return None, accounts.find(conn, username)


def _succeed(
    conn: Connection,
    auth: OperatorAuth,
    account: accounts.Account,
    new_hash: str | None,
    address: str | None,
    user_agent: str | None,
) -> LoginOutcome:
    now = auth.now()
    operator = account.operator
    until = login_throttle.locked_until(conn, throttle_keys(operator.username, address), now)
    if until is not None:  # locked by failures that happened while the password was being checked
        return LoginOutcome(locked_until=until)
    login_throttle.clear_account(conn, operator.username)
    accounts.record_login(conn, operator.id, now)
    if new_hash:
        accounts.replace_hash(conn, operator.id, new_hash)
    operator_sessions.purge_expired(conn, now, auth.sessions)
    token, session = operator_sessions.open_session(conn, operator, now, auth.sessions, address, user_agent)
    record(
        conn,
        now,
        "login",
        operator.username,
        operator_id=operator.id,
        target=f"operator:{operator.username}",
        detail={"role": operator.role.label, "session": session.id},
        address=address,
    )
    return LoginOutcome(session=session, token=token)


def _fail(
    conn: Connection, auth: OperatorAuth, username: str, account: accounts.Account | None, address: str | None
) -> LoginOutcome:
    now = auth.now()
    reason = "unknown" if account is None else "disabled" if account.operator.disabled else "password"
    operator_id = account.operator.id if account else None
    record(
        conn,
        now,
        "login.failed",
        username,
        operator_id=operator_id,
        target=f"operator:{username}",
        detail={"reason": reason},
        address=address,
    )
    newly = login_throttle.record_failure(conn, throttle_keys(username, address), now, auth.lockout)
    until = now + auth.lockout.lock_for if newly else None
    for scope, key in newly:
        record(
            conn,
            now,
            "login.lockout",
            username,
            operator_id=operator_id,
            target=f"{scope}:{key}",
            detail={"until": until.isoformat(), "failures": auth.lockout.limit(scope)},
            address=address,
        )
    login_throttle.purge_stale(conn, now, auth.lockout)
    return LoginOutcome(locked_until=until)


async def log_in(
    auth: OperatorAuth, typed_name: str, password: str, address: str | None, user_agent: str | None
) -> LoginOutcome:
    username = typed_name.strip().lower()[:64]
    until, account = await auth.db.run(_check_lock, username, address, auth.now())
    if until is not None:
        return LoginOutcome(locked_until=until)
    ok, new_hash = await auth.passwords.verify_async(account.password_hash if account else None, password)
    if ok and not account.operator.disabled:
        return await auth.db.run(_succeed, auth, account, new_hash, address, user_agent)
    return await auth.db.run(_fail, auth, username, account, address)


def _close(conn: Connection, auth: OperatorAuth, session: OperatorSession, address: str | None) -> None:
    operator_sessions.close(conn, session.id)
    operator = session.operator
    record(
        conn,
        auth.now(),
        "logout",
        operator.username,
        operator_id=operator.id,
        target=f"operator:{operator.username}",
        detail={"session": session.id},
        address=address,
    )


async def log_out(auth: OperatorAuth, session: OperatorSession, address: str | None) -> None:
    await auth.db.run(_close, auth, session, address)


async def current_session(auth: OperatorAuth, token: str | None) -> OperatorSession | None:
    if not token:
        return None
    return await auth.db.run(operator_sessions.load, token, auth.now(), auth.sessions)
