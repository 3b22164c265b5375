"""POST /api/v1/crm/{client}/events: a CRM posts its own JSON; its mapping makes the case event.

Signed like every request; answered exactly like POST /api/v1/events (202 with the same body, the
same id again answers as the first time), and every error names the CRM's own field at fault.
"""

from __future__ import annotations

from aiohttp import web

from ..authentication import CLIENT_ID
from ..bodies import read_json
from ..deps import DEPS
from ..operations import Operation, PathParameter, problem
from ..problems import Problem, invalid
from .errors import errors
from .events import ACCEPTED, answer_intake


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
    return answer_intake(result, payload.get("id"), mapping.source_errors(result.errors))


OPERATIONS = (
    Operation(
        "POST",
        "/api/v1/crm/{client}/events",
        post_crm_event,
        "postCrmEvent",
        "Post one event in the CRM's own JSON",
        {
            "202": ACCEPTED,
            "403": problem("`client` is not the signing client"),
            **errors("400", "401", "404", "409", "413", "415", "422", "500"),
        },
        description=(
            "The body is the CRM's own JSON; the client's mapping file (`[[crm_adapters]]` kind "
            "`mapped_json`) makes the case event of it, which is then accepted exactly as by "
            "POST /api/v1/events (same 202 body; the same event id again answers as the first "
            "time). Every error names the CRM's own field (`ciudadano.celular`, not "
            "`citizen.msisdn`). `client` must be the signing client. 409: the event id was already "
            "used for another event."
        ),
        path_parameters=(PathParameter("client", {"type": "string"}, "the signing client's id"),),
        body={"type": "object", "description": "the CRM's own JSON, as its mapping file reads it"},
    ),
)
