"""Accepting an event: one transaction records it, plans its messages and queues them.

Idempotent on (client, event id): a repeated post, also a concurrent one, finds the first row
(INSERT … ON CONFLICT DO NOTHING waits for a concurrent inserter on PostgreSQL) and answers with
the response stored by the first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from gateway.domain.catalog import EVENT_KINDS
from gateway.domain.composer import Composer
from gateway.domain.events import Event

from . import outbox
from .citizens import upsert_case, upsert_citizen
from .db import insert_ignoring_conflicts
from .models import events


def accept_event(
    conn: Connection,
    client_id: str,
    event: Event,
    payload: dict,
    composer: Composer,
    validity: timedelta,
    now: datetime,
) -> tuple[dict, bool]:
    """Returns (the response to give, whether this call created the event)."""
    inserted = conn.execute(
        insert_ignoring_conflicts(conn, events, ["client_id", "event_key"])
        .values(client_id=client_id, event_key=event.id, type=event.type, payload=payload, received_at=now)
        .returning(events.c.id)
    ).first()
    if inserted is None:
        response = conn.execute(
            select(events.c.response).where(events.c.client_id == client_id, events.c.event_key == event.id)
        ).scalar_one()
        return response, False
    event_row_id = inserted[0]
    kind = EVENT_KINDS[event.type]
    priority = kind.priority if event.priority is None else type(kind.priority).parse(event.priority)
    rows = []
    if kind.audience == "case_citizen":
        citizen = event.citizen
        citizen_id, opted_out, language = upsert_citizen(
            conn, citizen.msisdn, citizen.language, citizen.name, now
        )
        upsert_case(conn, event.case.folio, citizen_id, event.case.category, event.case.status, now)
        if not opted_out:
            text = composer.compose(event, language, now)
            rows.append(
                {
                    "event_id": event_row_id,
                    "citizen_id": citizen_id,
                    "msisdn": citizen.msisdn,
                    "language": language,
                    "body": text.body,
                    "encoding": text.encoding,
                    "segments": text.segments,
                    "priority": int(priority),
                    "expires_at": now + validity,
                }
            )
    message_ids = outbox.enqueue(conn, rows, now)
    response = {"event_id": event.id, "message_ids": message_ids, "recipients": len(message_ids)}
    conn.execute(update(events).where(events.c.id == event_row_id).values(response=response))
    return response, True
