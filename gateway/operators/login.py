"""Signing in and out: password check, lockout, a new server-side session, the audit entries.

Every answer to a refused login is the same whether the name exists, is disabled or the password
is wrong; only the audit log (read by admins) says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from . import accounts, lockout, sessions
from .audit import record
from .context import OperatorAuth
from .sessions import OperatorSession


@dataclass(frozen=True)
class LoginOutcome:
    session: OperatorSession | None = None
    token: str | None = None  # the cookie's value; only when signed in
    locked_until: datetime | None = None  # refused: too many failures


def _check_lock(
    conn: Connection, username: str, address: str | None, now: datetime
) -> tuple[datetime | None, accounts.Account | None]:
    """(the lock in force, or None and the account of that name if there is one)."""
    until = lockout.locked_until(conn, lockout.keys(username, address), now)
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
    until = lockout.locked_until(conn, lockout.keys(operator.username, address), now)
    if until is not None:  # locked by failures that happened while the password was being checked
        return LoginOutcome(locked_until=until)
    lockout.clear_account(conn, operator.username)
    accounts.record_login(conn, operator.id, now)
    if new_hash:
        accounts.replace_hash(conn, operator.id, new_hash)
    sessions.purge_expired(conn, now, auth.sessions)
    token, session = sessions.open_session(conn, operator, now, auth.sessions, address, user_agent)
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
    newly = lockout.record_failure(conn, lockout.keys(username, address), now, auth.lockout)
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
    lockout.purge_stale(conn, now, auth.lockout)
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
    sessions.close(conn, session.id)
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
    return await auth.db.run(sessions.load, token, auth.now(), auth.sessions)
