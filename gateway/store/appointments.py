"""Appointments: one per case, the citizen's SI / NO, and which reminders went out.

``appointment.scheduled`` makes the case's appointment ``pending`` (a new one replaces the old);
the citizen's SI / NO (the SMS keywords call :func:`record_answer`) makes it ``confirmed`` or
``declined`` and queues a status callback to the CRM; ``appointment.cancelled`` makes it
``cancelled``. Its reminders are due times on the row (``remind_24h_at`` / ``remind_2h_at``, written
in the transaction that schedules it), so any gateway process can send them: :func:`claim_due`
marks a due reminder sent (``reminded_24h_at`` / ``reminded_2h_at``) in the transaction that queues
it, once, whatever runs twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, select, update

from .db import insert_ignoring_conflicts
from .models import appointments, citizens

PENDING, CONFIRMED, DECLINED, CANCELLED = "pending", "confirmed", "declined", "cancelled"
ACTIVE = (PENDING, CONFIRMED)
REMINDERS = ("2h", "24h")  # claimed in this order: a 24 h reminder still due once the 2 h one went is moot
_DUE = {"24h": appointments.c.remind_24h_at, "2h": appointments.c.remind_2h_at}
_SENT = {"24h": appointments.c.reminded_24h_at, "2h": appointments.c.reminded_2h_at}


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
    reminders: Sequence[tuple[str, datetime]] = (),
    now: datetime,
) -> int:
    """The case's appointment becomes this one, pending an answer, with its reminders due at the
    given (label, naive UTC) times; returns its id."""
    due = dict(reminders)
    values = {
        "citizen_id": citizen_id,
        "client_id": client_id,
        "folio": folio,
        "at": at,
        "place": place,
        "status": PENDING,
        "event_id": event_id,
        "event_key": event_key,
        "remind_24h_at": due.get("24h"),
        "remind_2h_at": due.get("2h"),
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


def claim_due(conn: Connection, now: datetime, limit: int = 200) -> list[tuple[str, dict]]:
    """Reminders due by ``now`` of appointments still active and ahead, marked sent: (label,
    appointment with the citizen's number and language), soonest first. The caller queues them in
    the same transaction. Rows another process is claiming are skipped on PostgreSQL. When both are
    due (no process ran for a while) only the 2 h one goes."""
    a = appointments.c
    out: list[tuple[str, dict]] = []
    for label in REMINDERS:
        due, sent = _DUE[label], _SENT[label]
        ready = and_(a.status.in_(ACTIVE), sent.is_(None), due.is_not(None), due <= now, a.at > now)
        if label == "24h":
            ready = and_(ready, a.reminded_2h_at.is_(None))
        query = select(a.id).where(ready).order_by(due, a.id).limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(conn.execute(query).scalars())
        if not ids:
            continue
        conn.execute(update(appointments).where(a.id.in_(ids)).values({sent.name: now, "updated_at": now}))
        for appointment_id in ids:
            found = get(conn, appointment_id)
            if found is not None and not found["opted_out"]:
                out.append((label, found))
    return out


def active_for_case(conn: Connection, case_id: int):
    """The case's pending or confirmed appointment (at, place), if any."""
    return conn.execute(
        select(appointments.c.at, appointments.c.place).where(
            appointments.c.case_id == case_id, appointments.c.status.in_(ACTIVE)
        )
    ).first()


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
