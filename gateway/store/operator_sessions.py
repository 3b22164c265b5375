"""Operators' server-side sessions: a random token in the cookie, its SHA-256 in the database.

A session ends at logout, when its operator is disabled or changes password, after ``lifetime``
whatever the activity, and after ``idle`` without a request (an open dashboard keeps its session
alive through its live stream). ``last_seen_at`` is written at most once per ``touch_every`` so
a busy page does not turn every read into a write.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import Connection, delete, insert, or_, select, update

from gateway.domain.operators import Operator, OperatorSession, SessionPolicy

from .models import operator_sessions, operators
from .operators import operator_from_row

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    conn: Connection,
    operator: Operator,
    now: datetime,
    policy: SessionPolicy,
    address: str | None,
    user_agent: str | None,
) -> tuple[str, OperatorSession]:
    """A new session: (the cookie's token, the session). The token is never stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf = secrets.token_urlsafe(TOKEN_BYTES)
    expires = now + policy.lifetime
    session_id = conn.execute(
        insert(operator_sessions)
        .values(
            token_hash=token_digest(token),
            operator_id=operator.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=expires,
            last_seen_at=now,
            address=address,
            user_agent=(user_agent or "")[:255] or None,
        )
        .returning(operator_sessions.c.id)
    ).scalar_one()
    return token, OperatorSession(session_id, operator, csrf, expires)


def load(conn: Connection, token: str, now: datetime, policy: SessionPolicy) -> OperatorSession | None:
    """The live session of this token, or None (unknown, ended, or its operator disabled)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    s, o = operator_sessions.c, operators.c
    row = (
        conn.execute(
            select(s.id.label("session_id"), s.csrf_token, s.expires_at, s.last_seen_at)
            .add_columns(o.id, o.username, o.role, o.disabled_at)
            .join(operators, o.id == s.operator_id)
            .where(s.token_hash == token_digest(token))
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    if row["expires_at"] <= now or row["last_seen_at"] + policy.idle <= now or row["disabled_at"]:
        close(conn, row["session_id"])
        return None
    if now - row["last_seen_at"] >= policy.touch_every:
        conn.execute(update(operator_sessions).where(s.id == row["session_id"]).values(last_seen_at=now))
    return OperatorSession(row["session_id"], operator_from_row(row), row["csrf_token"], row["expires_at"])


def close(conn: Connection, session_id: int) -> None:
    conn.execute(delete(operator_sessions).where(operator_sessions.c.id == session_id))


def close_all(conn: Connection, operator_id: int) -> int:
    """End every session of an operator (disabled, or a new password); how many there were."""
    return conn.execute(
        delete(operator_sessions).where(operator_sessions.c.operator_id == operator_id)
    ).rowcount


def purge_expired(conn: Connection, now: datetime, policy: SessionPolicy) -> int:
    s = operator_sessions.c
    return conn.execute(
        delete(operator_sessions).where(or_(s.expires_at <= now, s.last_seen_at <= now - policy.idle))
    ).rowcount
