"""The audit log: who did what, when, to what and from which address, in the database.

``record`` writes a row inside the caller's transaction (so an action and its entry commit
together); ``audit`` writes one for the operator of a dashboard request.
"""

from __future__ import annotations

import functools
from datetime import datetime

from aiohttp import web
from sqlalchemy import Connection, insert, select

from gateway.store.models import audit_log

from .context import OPERATOR_AUTH, SESSION, client_address


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


async def audit(
    request: web.Request, action: str, target: str | None = None, detail: dict | None = None
) -> None:
    """Record what the signed-in operator of ``request`` did: ``message.view_number``,
    ``broadcast.cancel``… (``target`` names what it was done to, such as ``message:42``)."""
    auth = request.config_dict[OPERATOR_AUTH]
    session = request[SESSION]
    entry = functools.partial(
        record,
        at=auth.now(),
        action=action,
        actor=session.operator.username,
        operator_id=session.operator.id,
        target=target,
        detail=detail,
        address=client_address(request, auth.trust_forwarded_for),
    )
    await auth.db.run(entry)


def recent(conn: Connection, limit: int = 50, actor: str | None = None) -> list[dict]:
    a = audit_log.c
    query = select(a.at, a.actor, a.action, a.target, a.detail, a.address).order_by(a.id.desc()).limit(limit)
    if actor:
        query = query.where(a.actor == actor)
    return [dict(r) for r in conn.execute(query).mappings()]
