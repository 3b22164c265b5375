"""ESTADO <folio> re-reads an Open311 request whose copy is old; forget erases the adapters' copies;
work written by another process (an event file) is picked up by the running fan-out and reminders."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from crm_adapters import state
from crm_adapters.open311.refresh import FreshStatusInbox
from gateway.domain.composer import Composer
from gateway.domain.notices import NoticePolicy
from gateway.domain.templates import TemplateRenderer
from gateway.services.intake import IntakeService
from gateway.signals import Signals, Wakeup
from gateway.store import privacy, subscriptions
from gateway.store.citizens import upsert_citizen
from gateway.store.intake import IntakeBatcher
from gateway.store.models import crm_phone_numbers, crm_tracked_requests, messages
from gateway.store.signatures import SeenSignatures
from gateway.store.zones import ids_for
from scheduler.fanout import FanoutService
from scheduler.reminders import ReminderService

from .conftest import CITY, START, stored_events
from .georeport import Fault

PHONE = "55 1234 5678"


class Inbox:
    """The citizens' inbox, recording what it was handed and what the case's events were then."""

    def __init__(self, db):
        self.db = db
        self.seen: list[tuple[str, int]] = []

    async def handle(self, carrier, msisdn, text, received_at):
        self.seen.append((text, len(stored_events(self.db))))


async def test_estado_reads_a_stale_request_again_before_answering(db, make_poller, georeport, clock):
    poller = make_poller(refresh_status_after_seconds=300, every_seconds=3600)
    await poller.poll_once()
    georeport.add("4512", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    await poller.poll_once()
    inbox = Inbox(db)
    fresh = FreshStatusInbox(inbox, db, {poller.name: poller}, now=clock)
    georeport.change("4512", clock.advance(seconds=60), status_notes="Cuadrilla en camino")
    # a fresh copy (a minute old): answered from it
    await fresh.handle("telcel", "+525512345678", "estado 4512", clock())
    assert inbox.seen[-1] == ("estado 4512", 1) and fresh.refreshed == 0
    # ten minutes later the copy is stale: the CRM is asked first, the change is an event
    clock.advance(minutes=10)
    georeport.queries.clear()
    await fresh.handle("telcel", "+525512345678", "ESTADO 4512", clock())
    assert georeport.queries == [("4512.json", {})]
    assert inbox.seen[-1] == ("ESTADO 4512", 2) and stored_events(db)[-1][1] == "case.status_changed"
    # other texts, and unknown folios, go straight through
    await fresh.handle("telcel", "+525512345678", "AYUDA", clock())
    await fresh.handle("telcel", "+525512345678", "ESTADO 999", clock())
    assert len(inbox.seen) == 4 and fresh.refreshed == 1


async def test_a_failed_refresh_still_answers(db, make_poller, georeport, clock):
    poller = make_poller(refresh_status_after_seconds=60, retries=0)
    await poller.poll_once()
    georeport.add("77", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    await poller.poll_once()
    clock.advance(minutes=5)
    georeport.faults.append(Fault("500", "77.json"))
    inbox = Inbox(db)
    await FreshStatusInbox(inbox, db, {poller.name: poller}, now=clock).handle(
        "t", "+525512345678", "ESTADO 77", clock()
    )
    assert inbox.seen == [("ESTADO 77", 1)]


async def test_forget_erases_the_adapters_copies_and_the_phone_directory(db, make_poller, georeport, clock):
    poller = make_poller()
    await poller.poll_once()
    georeport.add("88", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    await poller.poll_once()
    db.transaction(state.save_phone_numbers, "cesac", [("ACC-1", "+525512345678")], clock())
    exported = db.transaction(privacy.export, "+525512345678")
    assert exported["crm_phone_directory"][0]["key"] == "ACC-1"
    result = db.transaction(privacy.forget, "+525512345678", clock())
    assert result["erased"]["crm_phone_directory"] == 1
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(crm_tracked_requests)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(crm_phone_numbers)).scalar_one() == 0


async def test_broadcasts_and_appointments_written_elsewhere_are_picked_up(db):
    now = START
    policy = NoticePolicy(Composer(TemplateRenderer(CITY, "30311")))
    # "another process" (smsgw events import): an intake whose wake-ups reach no one here
    batcher = IntakeBatcher(db, policy, lambda: now)
    other = IntakeService(db, policy, batcher, Signals(), SeenSignatures(db, 300), now=lambda: now)
    queued = asyncio.Event()
    fanout = FanoutService(db, Wakeup("broadcasts"), queued.set, now=lambda: now, idle_poll_seconds=0.05)
    fanout.start()
    reminders = ReminderService(db, policy, queued.set, now=lambda: now)
    try:
        citizen, _, _ = db.transaction(upsert_citizen, "+525512345678", "es", None, now)
        zone = policy.zones.resolve(["Popotla"])[0][0]
        zone_ids = db.transaction(ids_for, policy.zones, [zone.key], now)
        db.transaction(subscriptions.subscribe, citizen, "AGUA", zone_ids, now)
        notice = {"starts_at": "2026-12-02T09:00:00-06:00", "ends_at": "2026-12-02T18:00:00-06:00"}
        event = {"id": "w1", "type": "water.outage", "area": {"zones": ["Popotla"]}, "notice": notice}
        assert (await other.accept("cesac", event, source="file:x.csv")).status == "accepted"
        await asyncio.wait_for(queued.wait(), 5)  # the fan-out found it without being woken
        with db.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 1
        at = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
        appointment = {
            "id": "a1",
            "type": "appointment.scheduled",
            "case": {"folio": "MH-1", "appointment": {"at": at.isoformat()}},
            "citizen": {"msisdn": PHONE},
        }
        assert (await other.accept("cesac", appointment, source="file:x.csv")).status == "accepted"
        # its reminders are rows: this process sends them when they fall due
        now = (at - timedelta(hours=24)).replace(tzinfo=None)
        assert await reminders.run_once() == 1
    finally:
        await fanout.stop()
