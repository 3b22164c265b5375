"""POST /api/v1/events: a CRM posts one signed case event."""

from __future__ import annotations

from aiohttp import web

from gateway.services.intake import IntakeResult

from ..authentication import CLIENT_ID, SIGNATURE, replay
from ..bodies import read_json
from ..deps import DEPS
from ..problems import Problem, invalid
from ..responses import json_response


def idempotency_conflict(event_id: object, field: str = "id") -> Problem:
    return Problem(
        409,
        "Idempotency key reused",
        f"idempotency key reused with a different body: event {event_id!r} was first posted with "
        "another body; nothing was changed",
        [(field, "idempotency key reused with a different body")],
        slug="idempotency-key-reused",
    )


def answer(
    result: IntakeResult, event_id: object, errors: list[tuple[str, str]] | None = None
) -> web.Response:
    """The HTTP answer of an intake result (``errors``: the fields as the client named them)."""
    if result.ok:
        return json_response(result.response, status=202)
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
    return answer(result, data.get("id") if isinstance(data, dict) else None)
