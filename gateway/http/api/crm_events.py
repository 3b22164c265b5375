"""POST /api/v1/crm/{client}/events: a CRM posts its own JSON; its mapping makes the case event.

Signed like every request; answered exactly like POST /api/v1/events (202 with the same body, the
same id again answers as the first time), and every error names the CRM's own field at fault.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http.api.events import answer
from gateway.http.authentication import CLIENT_ID
from gateway.http.bodies import read_json
from gateway.http.deps import DEPS
from gateway.http.problems import Problem, invalid


async def post_crm_event(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    client_id = request[CLIENT_ID]
    if request.match_info["client"] != client_id:
        raise Problem(
            403,
            "Forbidden",
            f"signed as {client_id!r}: post to /api/v1/crm/{client_id}/events",
            slug="forbidden",
        )
    mapping = deps.crm_mappings.get(client_id)
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
    result = await deps.intake.accept(client_id, payload, source="crm_json")
    return answer(result, payload.get("id"), mapping.source_errors(result.errors))
