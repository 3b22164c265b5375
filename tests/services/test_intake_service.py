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
from gateway.store import subscriptions
from gateway.store.citizens import upsert_citizen
from gateway.store.intake import IntakeBatcher
from gateway.store.models import events, messages
from gateway.store.zones import sync_zones

CITY = ZoneInfo("America/Mexico_City")
NOW = datetime(2026, 11, 30, 16, 0)


class Wakes:
    def __init__(self):
        self.queued = 0
        self.broadcasts: list[int] = []
        self.reminders: list = []

    def on_queued(self) -> None:
        self.queued += 1

    def on_broadcast(self, broadcast_id: int) -> None:
        self.broadcasts.append(broadcast_id)

    async def on_reminders(self, ops) -> None:
        self.reminders += ops


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
def service(db, wakes) -> IntakeService:
    policy = NoticePolicy(Composer(TemplateRenderer(CITY, "30311")))
    policy.zone_ids = db.transaction(sync_zones, policy.zones, NOW)
    return IntakeService(
        db,
        policy,
        IntakeBatcher(db, policy, lambda: NOW),
        on_queued=wakes.on_queued,
        on_broadcast=wakes.on_broadcast,
        on_reminders=wakes.on_reminders,
        now=lambda: NOW,
    )


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


async def test_reminders_are_applied_after_the_commit(db, service, wakes):
    at = (NOW + timedelta(days=3)).isoformat() + "-00:00"
    await service.accept(
        "cesac", case_event("a1", "appointment.scheduled", appointment={"at": at}), source="x"
    )
    assert [op.action for op in wakes.reminders] == ["schedule"]


async def test_a_broadcast_wakes_the_fanout_when_it_has_recipients(db, service, wakes):
    citizen, _, _ = db.transaction(upsert_citizen, "+525512345678", "es", None, NOW)
    zone = service.policy.zones.resolve(["Popotla"])[0][0]
    db.transaction(subscriptions.subscribe, citizen, "AGUA", [service.policy.zone_ids[zone.key]], NOW)
    event = {
        "id": "w1",
        "type": "water.outage",
        "area": {"zones": ["Popotla"]},
        "notice": {"starts_at": "2026-12-02T09:00:00-06:00", "ends_at": "2026-12-02T18:00:00-06:00"},
    }
    result = await service.accept("cesac", event, source="webhook")
    assert result.status == "accepted" and result.response["recipients"] == 1
    assert wakes.broadcasts == [result.response["broadcast_id"]]
