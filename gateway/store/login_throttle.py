"""Failed logins counted per account name and per client address, and the locks they set.

Failures are counted in a window that starts at the first failure; reaching the limit locks the
name (or the address) until ``lock_for`` has passed. Names are counted as typed, whether or not an
account has that name, so a lockout says nothing about which accounts exist. Attempts while locked
are refused without checking the password and do not extend the lock. A successful login clears
its account's count (not its address's: one good password must not reset an address that is
trying many accounts). The state is in the database, shared by every gateway process.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, case, delete, func, or_, select, update

from gateway.domain.operators import ACCOUNT, LockoutPolicy, throttle_keys

from .db import insert_ignoring_conflicts
from .models import login_throttle


def _match(scope: str, key: str):
    return and_(login_throttle.c.scope == scope, login_throttle.c.key == key)


def locked_until(conn: Connection, keys: list[tuple[str, str]], now: datetime) -> datetime | None:
    """The end of the longest lock in force on any of these keys, or None."""
    t = login_throttle.c
    return conn.execute(
        select(func.max(t.locked_until)).where(
            or_(*(_match(scope, key) for scope, key in keys)), t.locked_until > now
        )
    ).scalar_one()


def record_failure(
    conn: Connection, keys: list[tuple[str, str]], now: datetime, policy: LockoutPolicy
) -> list[tuple[str, str]]:
    """Count one failure on each key; the keys this failure locked."""
    t = login_throttle.c
    locked = []
    for scope, key in keys:
        conn.execute(
            insert_ignoring_conflicts(conn, login_throttle, ["scope", "key"]).values(
                scope=scope, key=key, failures=0, window_started_at=now
            )
        )
        # a window that has run out, or a lock that has ended, starts counting afresh
        fresh = or_(
            t.window_started_at <= now - policy.window,
            and_(t.locked_until.is_not(None), t.locked_until <= now),
        )
        conn.execute(
            update(login_throttle)
            .where(_match(scope, key))
            .values(
                failures=case((fresh, 1), else_=t.failures + 1),
                window_started_at=case((fresh, now), else_=t.window_started_at),
                locked_until=case((fresh, None), else_=t.locked_until),
            )
        )
        newly = conn.execute(
            update(login_throttle)
            .where(_match(scope, key), t.failures >= policy.limit(scope), t.locked_until.is_(None))
            .values(locked_until=now + policy.lock_for)
        ).rowcount
        if newly:
            locked.append((scope, key))
    return locked


def clear_account(conn: Connection, username: str) -> None:
    conn.execute(delete(login_throttle).where(_match(ACCOUNT, throttle_keys(username, None)[0][1])))


def purge_stale(conn: Connection, now: datetime, policy: LockoutPolicy) -> int:
    """Forget counts whose window and lock have both run out."""
    t = login_throttle.c
    return conn.execute(
        delete(login_throttle).where(
            t.window_started_at <= now - policy.window, or_(t.locked_until.is_(None), t.locked_until <= now)
        )
    ).rowcount
