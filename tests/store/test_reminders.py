"""Appointment reminders as due times on the appointment rows, under a controlled clock, on SQLite
and PostgreSQL: due 24 h and 2 h before, sent once by whichever service claims them (two services, a
restart), never for a cancelled appointment, moved out of quiet hours; SI / NO answers."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway.domain.catalog import REQUIRED_FIELDS
from gateway.domain.composer import Composer
from gateway.domain.events import parse_event
from gateway.domain.notices import NoticePolicy
from gateway.domain.templates import TemplateRenderer
from gateway.domain.timing import QuietHours
from gateway.store import appointments
from gateway.store.intake import accept_events
from gateway.store.models import appointments as appointments_table
from gateway.store.models import messages
from scheduler.reminders import ReminderService

CITY = ZoneInfo("America/Mexico_City")
NOW = datetime(2030, 11, 29, 16, 0)  # 10:00 in the city


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def policy() -> NoticePolicy:
    return NoticePolicy(Composer(TemplateRenderer(CITY, "30311")), quiet=QuietHours(time(22), time(7), CITY))


def service(db, policy, clock: Clock) -> ReminderService:
    return ReminderService(db, policy, lambda: None, now=clock)


def due(db) -> dict[str, str | None]:
    """The appointment's reminders as city times ("02 10:30"), None where none is due."""
    with db.engine.connect() as conn:
        row = conn.execute(select(appointments_table)).mappings().one()

    def city(moment):
        return moment.replace(tzinfo=UTC).astimezone(CITY).strftime("%d %H:%M") if moment else None

    return {"24h": city(row["remind_24h_at"]), "2h": city(row["remind_2h_at"])}


def post(db, policy, event: dict, now: datetime = NOW):
    prepared = policy.prepare("cesac", parse_event(event, REQUIRED_FIELDS), event, now)
    (result,) = db.transaction(accept_events, [prepared], policy, now)
    return result


def scheduled(at: str, event_id: str = "apt-1") -> dict:
    return {
        "id": event_id,
        "type": "appointment.scheduled",
        "case": {"folio": "MH-2030-000001", "appointment": {"at": at, "place": "Módulo Tacuba"}},
        "citizen": {"msisdn": "55 1234 5678", "language": "es"},
    }


def bodies(db) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(messages.c.body).order_by(messages.c.id)).scalars())


async def test_reminders_fire_24h_and_2h_before_once_whoever_runs_them(db, policy):
    clock = Clock(NOW)
    post(db, policy, scheduled("2030-12-03T10:30:00-06:00"))
    assert due(db) == {"24h": "02 10:30", "2h": "03 08:30"}
    first, second = service(db, policy, clock), service(db, policy, clock)  # two processes
    clock.now = datetime(2030, 12, 2, 16, 29)
    assert await first.run_once() == 0
    clock.now = datetime(2030, 12, 2, 16, 30)
    assert await first.run_once() + await second.run_once() == 1
    assert bodies(db)[-1] == (
        "Recordatorio: su cita por el reporte MH-2030-000001 es el martes 3 de diciembre, 10:30 "
        "en Modulo Tacuba."
    )
    assert await first.run_once() == 0  # sent once
    clock.now = datetime(2030, 12, 3, 14, 30)
    assert await second.run_once() == 1
    assert len(bodies(db)) == 3
    with db.engine.connect() as conn:
        row = conn.execute(select(appointments_table)).mappings().one()
    assert row["reminded_24h_at"] == datetime(2030, 12, 2, 16, 30) and row["reminded_2h_at"] is not None


async def test_a_reminder_that_fell_due_while_nothing_ran_goes_when_a_process_starts(db, policy):
    post(db, policy, scheduled("2030-12-03T10:30:00-06:00"))
    late = Clock(datetime(2030, 12, 3, 12, 0))  # 06:00 on the day: the 24 h one is late, not the 2 h
    assert await service(db, policy, late).run_once() == 1
    post(db, policy, scheduled("2030-12-04T10:30:00-06:00", "apt-2"))  # the case's next appointment
    both = Clock(datetime(2030, 12, 4, 15, 0))  # 09:00 on its day: both are due, only the 2 h goes
    assert await service(db, policy, both).run_once() == 1
    assert bodies(db)[-1].endswith("es el miércoles 4 de diciembre, 10:30 en Modulo Tacuba.")
    gone = Clock(datetime(2030, 12, 4, 17, 0))  # after the appointment: nothing more is sent
    assert await service(db, policy, gone).run_once() == 0


async def test_a_cancelled_appointment_loses_its_reminders(db, policy):
    clock = Clock(NOW)
    post(db, policy, scheduled("2030-12-03T10:30:00-06:00"))
    cancel = {
        "id": "apt-x",
        "type": "appointment.cancelled",
        "case": {"folio": "MH-2030-000001"},
        "citizen": {"msisdn": "5512345678"},
    }
    post(db, policy, cancel)
    assert bodies(db)[-1] == (
        "Se cancelo su cita por el reporte MH-2030-000001 del martes 3 de diciembre, 10:30. "
        "Para mas informacion envie ESTADO MH-2030-000001 al 30311."
    )
    clock.now = datetime(2030, 12, 3, 14, 30)  # both would be due: the appointment is cancelled
    assert await service(db, policy, clock).run_once() == 0


async def test_reminders_avoid_quiet_hours(db, policy):
    post(db, policy, scheduled("2030-12-03T08:00:00-06:00"))
    assert due(db) == {"24h": "02 08:00", "2h": "03 07:00"}  # 06:00 is quiet


async def test_rescheduling_replaces_the_reminders(db, policy):
    post(db, policy, scheduled("2030-12-03T10:30:00-06:00"))
    later = datetime(2030, 11, 30, 19, 0)  # 13:00 the next day, city time
    post(db, policy, scheduled("2030-12-01T12:00:00-06:00", "apt-2"), later)
    assert due(db) == {"24h": None, "2h": "01 10:00"}  # 24 h before is already past


async def test_si_and_no_answers(db, policy):
    post(db, policy, scheduled("2030-12-03T10:30:00-06:00"))
    with db.engine.connect() as conn:
        citizen_id = conn.execute(select(appointments_table.c.citizen_id)).scalar_one()
    answered = db.transaction(appointments.record_answer, citizen_id, True, NOW)
    assert answered["status"] == "confirmed"
    assert db.transaction(appointments.pending_for, citizen_id) is None
    assert db.transaction(appointments.record_answer, citizen_id, False, NOW) is None
