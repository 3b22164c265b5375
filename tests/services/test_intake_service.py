"""The intake service every way in calls: accepted, duplicate, invalid, conflict, and the wake-ups."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from gateway.domain.composer import Composer
from gateway.domain.notices import NoticePolicy
from gateway.domain.templates import TemplateRenderer
from gateway.services.intake import IntakeService
from gateway.signals import Signals
from gateway.store import subscriptions
from gateway.store.citizens import upsert_citizen
from gateway.store.intake import IntakeBatcher
from gateway.store.models import appointments, events, messages
from gateway.store.signatures import SeenSignatures
from gateway.store.zones import ids_for

CITY = ZoneInfo("America/Mexico_City")
NOW = datetime(2026, 11, 30, 16, 0)


class Wakes:
    """What the intake woke: the dispatcher (queued), the fan-out (broadcasts)."""

    def __init__(self, signals: Signals):
        self.signals = signals

    @property
    def queued(self) -> int:
        return self.signals.outbox.sets

    @property
    def broadcasts(self) -> int:
        return self.signals.broadcasts.sets


@pytest.fixture
def signals() -> Signals:
    return Signals()


@pytest.fixture
def wakes(signals) -> Wakes:
    return Wakes(signals)


@pytest.fixture
def service(db, signals) -> IntakeService:
    policy = NoticePolicy(Composer(TemplateRenderer(CITY, "30311")))
    batcher = IntakeBatcher(db, policy, lambda: NOW)
    return IntakeService(db, policy, batcher, signals, SeenSignatures(db, 300), now=lambda: NOW)


def case_event(event_id="e1", type_="case.received", folio="MH-1", msisdn="55 1234 5678", **case) -> dict:
    return {"id": event_id, "type": type_, "case": {"folio": folio, **case}, "citizen": {"msisdn": msisdn}}


def count(db, table) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


async def test_accepted_then_duplicate_answered_as_before(db, service, wakes):
    first = await service.accept("cesac", case_event(), source="webhook")
    assert first.status == "accepted" and first.ok and first.errors == []
    assert first.response["event_id"] == "e1" and first.response["recipients"] == 1
    assert wakes.queued == 1
    again = await service.accept("cesac", case_event(), source="file:x.csv")
    assert again.status == "duplicate" and again.response == first.response
    assert wakes.queued == 1 and count(db, messages) == 1
    # another client's id space is its own
    other = await service.accept("suac", case_event(), source="webhook")
    assert other.status == "accepted"


async def test_invalid_names_the_field_and_writes_nothing(db, service, wakes):
    result = await service.accept("cesac", case_event(msisdn="12"), source="webhook")
    assert result.status == "invalid" and result.response is None
    assert [f for f, _ in result.errors] == ["citizen.msisdn"]
    result = await service.accept("cesac", {"id": "x", "type": "case.status_changed"}, source="webhook")
    assert result.status == "invalid"
    assert {f for f, _ in result.errors} == {"case.folio", "citizen.msisdn", "case.status"}
    assert count(db, events) == 0 and wakes.queued == 0


async def test_an_id_reused_with_another_body_is_a_conflict(db, service):
    await service.accept("cesac", case_event(), source="webhook")
    result = await service.accept("cesac", case_event(folio="MH-2"), source="webhook")
    assert result.status == "conflict" and result.response is None
    assert result.errors == [("id", "idempotency key reused with a different body")]
    result = await service.accept("cesac", case_event(type_="case.closed"), source="webhook")
    assert result.status == "conflict"
    # any other body under the id is a conflict, a name added too; the same body is a duplicate
    named = case_event()
    named["citizen"]["name"] = "Ana"
    assert (await service.accept("cesac", named, source="webhook")).status == "conflict"
    assert (await service.accept("cesac", case_event(), source="webhook")).status == "duplicate"
    assert count(db, events) == 1


async def test_a_repeat_that_no_longer_passes_answers_as_the_first_time(db, service):
    at = (NOW + timedelta(hours=3)).isoformat() + "-00:00"
    event = case_event("a1", "appointment.scheduled", appointment={"at": at})
    first = await service.accept("cesac", event, source="webhook")
    assert first.status == "accepted"
    service.now = lambda: NOW + timedelta(hours=4)  # the appointment is past now
    again = await service.accept("cesac", event, source="webhook")
    assert again.status == "duplicate" and again.response == first.response


async def test_reminders_are_due_times_written_with_the_event(db, service):
    at = NOW + timedelta(days=3)
    event = case_event("a1", "appointment.scheduled", appointment={"at": at.isoformat() + "-00:00"})
    await service.accept("cesac", event, source="x")
    with db.engine.connect() as conn:
        due = conn.execute(select(appointments.c.remind_24h_at, appointments.c.remind_2h_at)).one()
    assert tuple(due) == (at - timedelta(hours=24), at - timedelta(hours=2))


async def test_a_broadcast_wakes_the_fanout_when_it_has_recipients(db, service, wakes):
    citizen, _, _ = db.transaction(upsert_citizen, "+525512345678", "es", None, NOW)
    zone = service.policy.zones.resolve(["Popotla"])[0][0]
    zone_ids = db.transaction(ids_for, service.policy.zones, [zone.key], NOW)
    db.transaction(subscriptions.subscribe, citizen, "AGUA", zone_ids, NOW)
    event = {
        "id": "w1",
        "type": "water.outage",
        "area": {"zones": ["Popotla"]},
        "notice": {"starts_at": "2026-12-02T09:00:00-06:00", "ends_at": "2026-12-02T18:00:00-06:00"},
    }
    result = await service.accept("cesac", event, source="webhook")
    assert result.status == "accepted" and result.response["recipients"] == 1
    assert wakes.broadcasts == 1
