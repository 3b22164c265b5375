"""POST /api/v1/events: a CRM posts one signed case event."""

from __future__ import annotations

import inspect

import structlog
from aiohttp import web
from sqlalchemy import select

from gateway import clock
from gateway.domain.catalog import REQUIRED_FIELDS
from gateway.domain.events import EventInvalid, parse_event
from gateway.http.authentication import CLIENT_ID, SIGNATURE, register_once, replay
from gateway.http.bodies import read_json
from gateway.http.deps import CONTEXT
from gateway.http.problems import Problem, invalid
from gateway.http.responses import json_response
from gateway.store.intake import same_payload
from gateway.store.models import events

log = structlog.get_logger("api")


def _stored(conn, client_id: str, event_id: str):
    """(response, payload) of the event first posted under this id, or None."""
    return conn.execute(
        select(events.c.response, events.c.payload).where(
            events.c.client_id == client_id, events.c.event_key == event_id
        )
    ).first()


def idempotency_conflict(event_id: str) -> Problem:
    return Problem(
        409,
        "Idempotency key reused",
        f"idempotency key reused with a different body: event {event_id!r} was first posted with "
        "another body; nothing was changed",
        [("id", "idempotency key reused with a different body")],
        slug="idempotency-key-reused",
    )


async def post_event(request: web.Request) -> web.Response:
    """The signature is registered in the intake's transaction, or before any other answer."""
    ctx = request.app[CONTEXT]
    client_id, signature = request[CLIENT_ID], request[SIGNATURE]
    try:
        data = read_json(request)
        try:
            event = parse_event(data, REQUIRED_FIELDS)
        except EventInvalid as exc:
            raise invalid(exc.errors) from None
    except Problem:
        await register_once(ctx, signature)  # a replayed bad request is refused as a replay
        raise
    try:
        prepared = ctx.policy.prepare(client_id, event, data, clock.utcnow())
    except EventInvalid as exc:
        await register_once(ctx, signature)
        # a repeated post answers as the first did, even if it would no longer pass (time moved on)
        stored = await ctx.db.run(_stored, client_id, event.id)
        if stored is None:
            raise invalid(exc.errors) from None
        if not same_payload(stored.payload, data):
            raise idempotency_conflict(event.id) from None
        return json_response(stored.response, status=202)
    result = await ctx.intake.submit(prepared, signature)
    if result.replay:
        raise replay()
    if result.conflict:
        log.info("event id reused with a different body", client=client_id, event_id=event.id)
        raise idempotency_conflict(event.id)
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
