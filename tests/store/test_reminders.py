"""Appointment reminders as APScheduler jobs in the persistent job store, under a controlled clock
(run_due), on SQLite and PostgreSQL: scheduled 24 h and 2 h before, kept across a restart, sent once,
removed by a cancellation, moved out of quiet hours; SI / NO answers."""

from __future__ import annotations

from datetime import datetime, time
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
NOW = datetime(2030, 11, 29, 16, 0)  # 10:00 in the city; far from the wall clock (the scheduler is paused)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def policy() -> NoticePolicy:
    return NoticePolicy(Composer(TemplateRenderer(CITY, "30311")), quiet=QuietHours(time(22), time(7), CITY))


@pytest.fixture
async def services(db, policy):
    started = []

    async def start(clock: Clock) -> ReminderService:
        service = ReminderService(db, policy, now=clock)
        await service.start(paused=True)
        started.append(service)
        return service

    yield start
    for service in started:
        service.shutdown()


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


async def test_reminders_survive_a_restart_and_fire_24h_and_2h_before(db, policy, services):
    clock = Clock(NOW)
    result = post(db, policy, scheduled("2030-12-03T10:30:00-06:00"))
    first = await services(clock)
    await first.apply(result.reminders)
    runs = {j.id: j.next_run_time.astimezone(CITY).strftime("%d %H:%M") for j in first.jobs()}
    assert runs == {"appointment-1-24h": "02 10:30", "appointment-1-2h": "03 08:30"}
    first.shutdown()

    second = await services(clock)  # a restart: the jobs are read back from the database
    assert {j.id for j in second.jobs()} == {"appointment-1-24h", "appointment-1-2h"}
    clock.now = datetime(2030, 12, 2, 16, 29)
    assert await second.run_due(clock.now) == 0
    clock.now = datetime(2030, 12, 2, 16, 30)
    assert await second.run_due(clock.now) == 1
    assert bodies(db)[-1] == (
        "Recordatorio: su cita por el reporte MH-2030-000001 es el martes 3 de diciembre, 10:30 "
        "en Modulo Tacuba."
    )
    assert [j.id for j in second.jobs()] == ["appointment-1-2h"]
    assert await second.send(1, "24h") is None  # a job that runs twice sends once
    clock.now = datetime(2030, 12, 3, 14, 30)
    assert await second.run_due(clock.now) == 1
    assert len(bodies(db)) == 3 and second.jobs() == []
    with db.engine.connect() as conn:
        row = conn.execute(select(appointments_table)).mappings().one()
    assert row["reminded_24h_at"] == datetime(2030, 12, 2, 16, 30) and row["reminded_2h_at"] is not None


async def test_a_cancelled_appointment_loses_its_reminders(db, policy, services):
    clock = Clock(NOW)
    service = await services(clock)
    await service.apply(post(db, policy, scheduled("2030-12-03T10:30:00-06:00")).reminders)
    assert len(service.jobs()) == 2
    cancel = {
        "id": "apt-x",
        "type": "appointment.cancelled",
        "case": {"folio": "MH-2030-000001"},
        "citizen": {"msisdn": "5512345678"},
    }
    result = post(db, policy, cancel)
    await service.apply(result.reminders)
    assert service.jobs() == []
    assert bodies(db)[-1] == (
        "Se cancelo su cita por el reporte MH-2030-000001 del martes 3 de diciembre, 10:30. "
        "Para mas informacion envie ESTADO MH-2030-000001 al 30311."
    )
    # even a job left behind would not send: the appointment is cancelled
    assert await service.send(1, "2h") is None


async def test_reminders_avoid_quiet_hours(db, policy, services):
    service = await services(Clock(NOW))
    await service.apply(post(db, policy, scheduled("2030-12-03T08:00:00-06:00")).reminders)
    runs = {j.id: j.next_run_time.astimezone(CITY).strftime("%d %H:%M") for j in service.jobs()}
    assert runs == {"appointment-1-24h": "02 08:00", "appointment-1-2h": "03 07:00"}  # 06:00 is quiet


async def test_rescheduling_replaces_the_reminders(db, policy, services):
    service = await services(Clock(NOW))
    await service.apply(post(db, policy, scheduled("2030-12-03T10:30:00-06:00")).reminders)
    later = datetime(2030, 11, 30, 19, 0)  # 13:00 the next day, city time
    moved = post(db, policy, scheduled("2030-12-01T12:00:00-06:00", "apt-2"), later)
    await service.apply(moved.reminders)
    runs = {j.id: j.next_run_time.astimezone(CITY).strftime("%d %H:%M") for j in service.jobs()}
    assert runs == {"appointment-1-2h": "01 10:00"}  # 24 h before is already past


async def test_missing_jobs_are_rescheduled_at_start(db, policy, services):
    post(db, policy, scheduled("2030-12-03T10:30:00-06:00"))  # committed; the process died before the jobs
    service = await services(Clock(NOW))
    assert {j.id for j in service.jobs()} == {"appointment-1-24h", "appointment-1-2h"}


async def test_si_and_no_answers(db, policy):
    post(db, policy, scheduled("2030-12-03T10:30:00-06:00"))
    with db.engine.connect() as conn:
        citizen_id = conn.execute(select(appointments_table.c.citizen_id)).scalar_one()
    answered = db.transaction(appointments.record_answer, citizen_id, True, NOW)
    assert answered["status"] == "confirmed"
    assert db.transaction(appointments.pending_for, citizen_id) is None
    assert db.transaction(appointments.record_answer, citizen_id, False, NOW) is None
