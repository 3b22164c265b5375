"""The audit log: who did what, when, to what and from which address, in the database.

``record`` writes a row inside the caller's transaction, so an action and its entry commit
together (gateway/http/operators/context.py ``audit`` writes one for a dashboard request).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from .models import audit_log


def record(
    conn: Connection,
    at: datetime,
    action: str,
    actor: str,
    *,
    operator_id: int | None = None,
    target: str | None = None,
    detail: dict | None = None,
    address: str | None = None,
) -> None:
    conn.execute(
        insert(audit_log).values(
            at=at,
            operator_id=operator_id,
            actor=actor[:64],
            action=action,
            target=target[:200] if target else None,
            detail=detail,
            address=address,
        )
    )


def recent(conn: Connection, limit: int = 50, actor: str | None = None) -> list[dict]:
    """The latest entries, newest first; only ``actor``'s when given."""
    a = audit_log.c
    query = select(a.at, a.actor, a.action, a.target, a.detail, a.address).order_by(a.id.desc()).limit(limit)
    if actor:
        query = query.where(a.actor == actor)
    return [dict(r) for r in conn.execute(query).mappings()]
