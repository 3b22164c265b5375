"""What the operators' HTTP layer shares: the app's OperatorAuth, the request's session, the
client's address, and ``audit(request, …)``, which every operator action calls."""

from __future__ import annotations

import functools

from aiohttp import web

from gateway.domain.operators import OperatorSession
from gateway.services.operator_auth import OperatorAuth
from gateway.store.audit import record

OPERATOR_AUTH = web.AppKey("operator_auth", OperatorAuth)
SESSION = web.RequestKey("operator_session", OperatorSession)


def client_address(request: web.Request, trust_forwarded_for: bool) -> str | None:
    """The client's address: the peer, or what a trusted proxy in front of us appended."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.remote


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
