"""POST /api/v1/events: a CRM posts one signed case event."""

from __future__ import annotations

import json

import structlog
from aiohttp import web

from gateway import clock
from gateway.domain.catalog import REQUIRED_FIELDS
from gateway.domain.events import EventInvalid, parse_event
from gateway.store.intake import accept_event

from .common import authenticate, json_response, read_body
from .context import CONTEXT
from .problems import Problem, invalid

log = structlog.get_logger("api")


async def post_event(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    body = await read_body(request, ctx.max_body_bytes)
    client_id = await authenticate(request, body)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(
            400, "Malformed JSON", f"the body is not valid JSON: {exc}", [("body", str(exc))]
        ) from None
    try:
        event = parse_event(data, REQUIRED_FIELDS)
    except EventInvalid as exc:
        raise invalid(exc.errors) from None
    response, created = await ctx.db.run(
        accept_event, client_id, event, data, ctx.composer, ctx.validity, clock.utcnow()
    )
    if created and response["message_ids"]:
        ctx.on_queued()
    log.info(
        "event accepted" if created else "duplicate event answered as before",
        client=client_id,
        event_id=event.id,
        type=event.type,
        messages=len(response["message_ids"]),
    )
    return json_response(response, status=202)
