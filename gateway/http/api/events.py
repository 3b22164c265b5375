"""POST /api/v1/events: a CRM posts one signed case event."""

from __future__ import annotations

from aiohttp import web

from gateway.domain.events import Event
from gateway.services.intake import IntakeResult

from ..authentication import CLIENT_ID, SIGNATURE, replay
from ..bodies import read_json
from ..deps import DEPS
from ..operations import Operation, answer, problem
from ..problems import Problem, invalid
from ..responses import model_response
from .errors import BAD_JSON, V1, errors
from .schemas import EventAccepted


def idempotency_conflict(event_id: object, field: str = "id") -> Problem:
    return Problem(
        409,
        "Idempotency key reused",
        f"idempotency key reused with a different body: event {event_id!r} was first posted with "
        "another body; nothing was changed",
        [(field, "idempotency key reused with a different body")],
        slug="idempotency-key-reused",
    )


def answer_intake(
    result: IntakeResult, event_id: object, errors: list[tuple[str, str]] | None = None
) -> web.Response:
    """The HTTP answer of an intake result (``errors``: the fields as the client named them)."""
    if result.ok:
        return model_response(EventAccepted.model_validate(result.response), status=202)
    if result.status == "replay":
        raise replay()
    errors = errors if errors is not None else result.errors
    if result.status == "conflict":
        raise idempotency_conflict(event_id, errors[0][0] if errors else "id")
    raise invalid(errors)


async def post_event(request: web.Request) -> web.Response:
    """The signature is registered in the intake's transaction, or before any other answer."""
    deps = request.app[DEPS]
    try:
        data = read_json(request)
    except Problem:
        if not await deps.signatures.register(request[SIGNATURE]):
            raise replay() from None
        raise
    result = await deps.intake.accept(
        request[CLIENT_ID], data, source="webhook", signature=request[SIGNATURE]
    )
    return answer_intake(result, data.get("id") if isinstance(data, dict) else None)


ACCEPTED = answer(EventAccepted, "Accepted (or a repeated post of an accepted event)")

OPERATIONS = (
    Operation(
        "POST",
        "/api/v1/events",
        post_event,
        "postEvent",
        "Post one case event",
        {
            "202": ACCEPTED,
            "400": problem("Malformed JSON: " + BAD_JSON),
            **errors("401", "413", "415"),
            "409": problem(
                "Idempotency key reused with a different body: this `id` was accepted with another "
                "body (compared as JSON: whitespace and key order do not matter); nothing changed"
            ),
            **errors("422", "500"),
        },
        description=(
            "Validates the event, records it and queues its messages in one transaction, then answers "
            "202. Posting the same `id` with the same body again (signed afresh) changes nothing and "
            "answers as the first time did; another body under that `id` is a 409. Broadcasts "
            "(water.outage, traffic.alert, emergency.alert, notice) answer with a `broadcast_id` and "
            "the recipient count; their messages are queued by the fan-out right after. Nothing is "
            "written on any error. This endpoint also accepts the older v1 signature "
            f"(`t=<unix seconds>,v1=<hex {V1}>`), for CRMs that sign v1 today."
        ),
        body=Event,
    ),
)
