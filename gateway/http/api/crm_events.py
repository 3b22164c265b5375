"""POST /api/v1/crm/{client}/events: a CRM posts its own JSON; its mapping makes the case event.

Signed like every request; answered exactly like POST /api/v1/events (202 with the same body, the
same id again answers as the first time), and every error names the CRM's own field at fault.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http.authentication import CLIENT_ID
from gateway.http.bodies import read_json
from gateway.http.deps import CONTEXT
from gateway.http.problems import Problem, invalid
from gateway.http.responses import json_response


async def post_crm_event(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    client_id = request[CLIENT_ID]
    if request.match_info["client"] != client_id:
        raise Problem(
            403,
            "Forbidden",
            f"signed as {client_id!r}: post to /api/v1/crm/{client_id}/events",
            slug="forbidden",
        )
    inbound = ctx.crm_inbound
    mapping = inbound.mappings.get(client_id) if inbound is not None else None
    if mapping is None:
        raise Problem(
            404,
            "No mapping for this client",
            f"no [[crm_adapters]] entry of kind mapped_json for client {client_id!r}",
            slug="no-mapping",
        )
    data = read_json(request)
    payload, errors = mapping.apply(data)
    if errors:
        raise invalid(errors)
    result = await inbound.intake.accept(client_id, payload, source="crm_json")
    if result.ok:
        return json_response(result.response, status=202)
    errors = mapping.source_errors(result.errors)
    if result.status == "conflict":
        detail = "; ".join(f"{name}: {reason}" for name, reason in errors)
        raise Problem(409, "Idempotency key reused", detail, errors, slug="idempotency-key-reused")
    raise invalid(errors)
