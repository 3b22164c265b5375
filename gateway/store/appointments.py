"""Appointments: one per case, the citizen's SI / NO, and which reminders went out.

``appointment.scheduled`` makes the case's appointment ``pending`` (a new one replaces the old);
the citizen's SI / NO (issue 6's keywords call :func:`record_answer`) makes it ``confirmed`` or
``declined`` and queues a status callback to the CRM; ``appointment.cancelled`` makes it
``cancelled``. Reminders are APScheduler jobs (scheduler/reminders.py); a reminder is sent at most
once (``reminded_24h_at`` / ``reminded_2h_at`` are claimed before sending).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from .db import insert_ignoring_conflicts
from .models import appointments, citizens

PENDING, CONFIRMED, DECLINED, CANCELLED = "pending", "confirmed", "declined", "cancelled"
ACTIVE = (PENDING, CONFIRMED)


def schedule(
    conn: Connection,
    *,
    case_id: int,
    citizen_id: int,
    client_id: str,
    folio: str,
    at: datetime,
    place: str | None,
    event_id: int,
    event_key: str,
    now: datetime,
) -> int:
    """The case's appointment becomes this one, pending an answer; returns its id."""
    values = {
        "citizen_id": citizen_id,
        "client_id": client_id,
        "folio": folio,
        "at": at,
        "place": place,
        "status": PENDING,
        "event_id": event_id,
        "event_key": event_key,
        "reminded_24h_at": None,
        "reminded_2h_at": None,
        "answered_at": None,
        "updated_at": now,
    }
    conn.execute(
        insert_ignoring_conflicts(conn, appointments, ["case_id"]).values(
            case_id=case_id, created_at=now, **values
        )
    )
    row_id = conn.execute(select(appointments.c.id).where(appointments.c.case_id == case_id)).scalar_one()
    conn.execute(update(appointments).where(appointments.c.id == row_id).values(**values))
    return row_id


def cancel(conn: Connection, case_id: int, now: datetime) -> dict | None:
    """The case's appointment is cancelled; returns it as it was (None when there is none)."""
    row = conn.execute(select(appointments).where(appointments.c.case_id == case_id)).mappings().first()
    if row is None:
        return None
    conn.execute(
        update(appointments).where(appointments.c.id == row["id"]).values(status=CANCELLED, updated_at=now)
    )
    return dict(row)


def get(conn: Connection, appointment_id: int) -> dict | None:
    row = conn.execute(
        select(appointments, citizens.c.msisdn, citizens.c.language, citizens.c.opted_out)
        .select_from(appointments.join(citizens, citizens.c.id == appointments.c.citizen_id))
        .where(appointments.c.id == appointment_id)
    ).mappings()
    found = row.first()
    return dict(found) if found else None


def claim_reminder(conn: Connection, appointment_id: int, label: str, now: datetime) -> dict | None:
    """Mark reminder ``label`` ("24h" or "2h") as sent, once; returns the appointment when it
    should be sent now (still active, ahead, citizen not opted out), else None."""
    column = appointments.c.reminded_24h_at if label == "24h" else appointments.c.reminded_2h_at
    claimed = conn.execute(
        update(appointments)
        .where(
            appointments.c.id == appointment_id,
            column.is_(None),
            appointments.c.status.in_(ACTIVE),
            appointments.c.at > now,
        )
        .values({column.name: now, "updated_at": now})
    ).rowcount
    if not claimed:
        return None
    found = get(conn, appointment_id)
    if found is None or found["opted_out"]:
        return None
    return found


def active(conn: Connection) -> list[dict]:
    """Appointments still ahead with reminders to give (re-scheduled at start-up if jobs were lost)."""
    return [
        dict(r)
        for r in conn.execute(
            select(appointments).where(
                appointments.c.status.in_(ACTIVE),
                (appointments.c.reminded_24h_at.is_(None)) | (appointments.c.reminded_2h_at.is_(None)),
            )
        ).mappings()
    ]


def pending_for(conn: Connection, citizen_id: int) -> dict | None:
    """The citizen's appointment awaiting SI / NO (the soonest ahead), if any."""
    row = (
        conn.execute(
            select(appointments)
            .where(appointments.c.citizen_id == citizen_id, appointments.c.status == PENDING)
            .order_by(appointments.c.at, appointments.c.id)
            .limit(1)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def record_answer(
    conn: Connection, citizen_id: int, confirmed: bool, now: datetime, on_answer=None
) -> dict | None:
    """The citizen answered SI (``confirmed``) or NO to their pending appointment.

    Returns the appointment with its new status, or None when nothing awaited an answer.
    ``on_answer(conn, appointment)`` runs in the same transaction (the CRM status callback).
    """
    row = pending_for(conn, citizen_id)
    if row is None:
        return None
    status = CONFIRMED if confirmed else DECLINED
    conn.execute(
        update(appointments)
        .where(appointments.c.id == row["id"])
        .values(status=status, answered_at=now, updated_at=now)
    )
    row.update(status=status, answered_at=now, updated_at=now)
    if on_answer is not None:
        on_answer(conn, row)
    return row
