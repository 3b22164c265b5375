"""Broadcasts: their progress, and an operator's cancel (queued and held messages become cancelled;
a finished broadcast, whose messages have all left or ended, answers 409)."""

from __future__ import annotations

from aiohttp import web

from gateway.services.operator_actions import NotAllowed
from gateway.store import broadcasts

from ..authentication import CLIENT_ID
from ..deps import DEPS
from ..operations import ID, Operation, answer, path_id, problem
from ..problems import Problem
from ..responses import model_response
from .errors import errors
from .schemas import Broadcast, CancelResult


async def get_broadcast(request: web.Request) -> web.Response:
    client_id = request[CLIENT_ID]
    broadcast_id = path_id(request, "broadcast")
    row = await request.app[DEPS].db.run(broadcasts.get, broadcast_id)
    if row is None or row["client_id"] != client_id:
        raise Problem(404, "Not found", f"no broadcast {broadcast_id}")
    return model_response(Broadcast.from_row(row))


async def cancel_broadcast(request: web.Request) -> web.Response:
    client_id = request[CLIENT_ID]
    broadcast_id = path_id(request, "broadcast")
    try:
        result = await request.app[DEPS].actions.cancel_broadcast(
            broadcast_id, client_id=client_id, by=f"crm:{client_id}"
        )
    except NotAllowed as exc:
        raise Problem(409, "Cannot cancel", str(exc), [("id", str(exc))], slug="not-cancellable") from None
    if result is None:
        raise Problem(404, "Not found", f"no broadcast {broadcast_id}")
    cancelled = CancelResult(
        id=broadcast_id,
        status="cancelled",
        previous_status=result["previous_status"],
        cancelled=result["cancelled"],
    )
    return model_response(cancelled)


OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/broadcasts/{id}",
        get_broadcast,
        "getBroadcast",
        "A broadcast's fan-out progress and its messages by status",
        {"200": answer(Broadcast, "The broadcast"), **errors("401", "404", "500")},
        path_parameters=(ID,),
    ),
    Operation(
        "POST",
        "/api/v1/broadcasts/{id}/cancel",
        cancel_broadcast,
        "cancelBroadcast",
        "Cancel a broadcast: its queued and held messages become cancelled",
        {
            "200": answer(CancelResult, "Cancelled"),
            "409": problem("The broadcast is finished or already cancelled; nothing changed"),
            **errors("401", "404", "413", "500"),
        },
        description=(
            "Stops the fan-out; messages already handed to a carrier go on. Empty body, signed. "
            "Only an unfinished broadcast (still fanning out, or with queued or held messages) can "
            "be cancelled: a finished or already cancelled one answers 409 and nothing changes."
        ),
        path_parameters=(ID,),
    ),
)
