"""POST /api/v1/events: a CRM posts one signed case event."""

from __future__ import annotations

import inspect
import json

import structlog
from aiohttp import web
from sqlalchemy import select

from gateway import clock
from gateway.domain.catalog import REQUIRED_FIELDS
from gateway.domain.events import EventInvalid, parse_event
from gateway.store.models import events

from .common import authenticate, json_response, read_body
from .context import CONTEXT
from .problems import Problem, invalid

log = structlog.get_logger("api")


def _stored_response(conn, client_id: str, event_id: str) -> dict | None:
    return conn.execute(
        select(events.c.response).where(events.c.client_id == client_id, events.c.event_key == event_id)
    ).scalar()


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
    try:
        prepared = ctx.policy.prepare(client_id, event, data, clock.utcnow())
    except EventInvalid as exc:
        # a repeated post answers as the first did, even if it would no longer pass (time moved on)
        stored = await ctx.db.run(_stored_response, client_id, event.id)
        if stored is None:
            raise invalid(exc.errors) from None
        return json_response(stored, status=202)
    result = await ctx.intake.submit(prepared)
    response = result.response
    if result.created:
        if response["message_ids"]:
            ctx.on_queued()
        if result.broadcast_id is not None and response.get("recipients"):
            ctx.on_broadcast(result.broadcast_id)
        if result.reminders:
            pending = ctx.on_reminders(result.reminders)
            if inspect.isawaitable(pending):
                await pending
    # one line per accepted event only at debug level (thousands a second; the events table is
    # the record); a duplicate is worth an info line
    (log.debug if result.created else log.info)(
        "event accepted" if result.created else "duplicate event answered as before",
        client=client_id,
        event_id=event.id,
        type=event.type,
        messages=len(response["message_ids"]),
        broadcast=result.broadcast_id,
    )
    return json_response(response, status=202)
