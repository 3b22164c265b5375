"""What goes wrong with a CRM: malformed bodies, timeouts, 5xx, clock skew, a restart mid-poll."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from crm_adapters.base import CycleReport
from gateway.services.intake import IntakeResult
from gateway.store.models import crm_adapter_state, crm_tracked_requests, events, messages

from .conftest import stored_events
from .georeport import Fault

PHONE = "55 1234 5678"


async def started(poller) -> None:
    report = await poller.poll_once()
    assert report.ok, report.error


def adapter_row(db) -> dict:
    with db.engine.connect() as conn:
        return dict(conn.execute(select(crm_adapter_state)).mappings().one())


def count(db, table) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


async def test_malformed_json_fails_the_cycle_and_changes_nothing(db, make_poller, georeport, clock):
    poller = make_poller()
    await started(poller)
    cursor = adapter_row(db)["cursor"]
    georeport.add("1", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    georeport.faults.append(Fault("malformed", "requests.json"))
    report = await poller.poll_once()
    assert report.error and "not valid JSON" in report.error
    row = adapter_row(db)
    assert row["cursor"] == cursor and row["failures"] == 1 and "not valid JSON" in row["last_error"]
    assert count(db, events) == 0 and count(db, crm_tracked_requests) == 0
    # the next cycle reads the same window again: nothing was missed
    report = await poller.poll_once()
    assert report.ok and stored_events(db)[0][1] == "case.received"
    assert adapter_row(db)["failures"] == 0


async def test_malformed_xml_fails_the_cycle_and_changes_nothing(db, make_poller, georeport, clock):
    poller = make_poller(format="xml")
    await started(poller)
    georeport.add("1", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    georeport.faults.append(Fault("malformed", "requests.xml"))
    report = await poller.poll_once()
    assert report.error and "not valid XML" in report.error
    assert count(db, events) == 0
    report = await poller.poll_once()
    assert report.ok and [t for _, t in stored_events(db)] == ["case.received"]


async def test_a_timeout_is_retried(db, make_poller, georeport, clock):
    poller = make_poller(timeout_seconds=0.3, retries=1)
    await started(poller)
    georeport.add("1", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    georeport.faults.append(Fault("hang", "requests.json"))
    report = await poller.poll_once()
    assert report.ok, report.error
    assert report.accepted == 1


async def test_timeouts_beyond_the_retries_fail_the_cycle_and_back_off(db, make_poller, georeport, clock):
    poller = make_poller(timeout_seconds=0.3, retries=0, every_seconds=60, max_backoff_seconds=600)
    await started(poller)
    georeport.add("1", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    georeport.faults.append(Fault("hang", "requests.json"))
    report = await poller.poll_once()
    assert report.error and "timed out" in report.error
    georeport.faults += [Fault("500", "requests.json")]
    await poller.poll_once()
    assert poller.failures == 2 and poller.not_before == clock() + timedelta(seconds=120)
    # the scheduled job waits out the backoff, then polls again
    georeport.queries.clear()
    await poller.run_scheduled()
    assert not georeport.queries
    clock.advance(seconds=121)
    await poller.run_scheduled()
    assert poller.failures == 0 and [t for _, t in stored_events(db)] == ["case.received"]


async def test_a_5xx_is_retried_and_a_4xx_is_not(db, make_poller, georeport, clock):
    poller = make_poller(retries=2)
    await started(poller)
    georeport.add("1", clock.advance(seconds=5), phone=PHONE)
    clock.advance(seconds=30)
    georeport.faults += [Fault("503", "requests.json"), Fault("502", "requests.json")]
    report = await poller.poll_once()
    assert report.ok and report.accepted == 1
    georeport.faults.append(Fault("400", "requests.json"))
    georeport.queries.clear()
    clock.advance(seconds=30)
    report = await poller.poll_once()
    assert report.error and "HTTP 400" in report.error and "temporarily unavailable" in report.error
    assert len(georeport.queries) == 1  # not retried


async def test_a_crm_clock_behind_ours_misses_nothing(db, make_poller, georeport, clock):
    georeport.skew = -timedelta(minutes=10)
    poller = make_poller(overlap_seconds=0)  # the Date header alone must catch it
    await started(poller)
    assert abs(poller.clock_offset() + 600) <= 1  # the Date header has whole seconds
    clock.advance(seconds=30)
    # created after our first poll, stamped with the CRM's clock: ten minutes "earlier"
    georeport.add("slow", georeport.clock(), phone=PHONE)
    clock.advance(seconds=30)
    report = await poller.poll_once()
    assert report.accepted == 1 and stored_events(db)[0][0].startswith("open311-slow-received-")


async def test_a_crm_clock_ahead_of_ours_misses_nothing(db, make_poller, georeport, clock):
    georeport.skew = timedelta(minutes=10)
    poller = make_poller(overlap_seconds=0)
    await started(poller)
    clock.advance(seconds=30)
    georeport.add("fast", georeport.clock(), phone=PHONE)  # "ten minutes in the future" for us
    clock.advance(seconds=30)
    report = await poller.poll_once()
    assert report.accepted == 1
    assert abs(adapter_row(db)["clock_offset_seconds"] - 600) <= 1


class FailingSink:
    """The intake, until the database "goes away" after ``limit`` events."""

    def __init__(self, intake, limit: int):
        self.intake = intake
        self.limit = limit
        self.calls = 0

    async def accept(self, client_id: str, payload: dict, *, source: str) -> IntakeResult:
        self.calls += 1
        if self.calls > self.limit:
            raise RuntimeError("database went away")
        return await self.intake.accept(client_id, payload, source=source)


async def test_a_restart_mid_poll_neither_misses_nor_repeats(db, make_poller, georeport, clock, intake):
    first = make_poller(sink=FailingSink(intake, 1500), owner="node-1", max_results=1000)
    await started(first)
    base = clock()
    for i in range(2500):
        georeport.add(f"R{i:05d}", base + timedelta(seconds=1 + i // 10), phone=PHONE)
    clock.advance(minutes=10)
    report = await first.poll_once()
    assert report.error and "database went away" in report.error
    accepted_before = count(db, events)
    assert 0 < accepted_before < 2500
    await first.close()
    # a new process (another owner: the old one released its lease on failure) picks up
    second = make_poller(owner="node-2", max_results=1000)
    clock.advance(seconds=30)
    report = await second.poll_once()
    assert report.ok, report.error
    ids = [e for e, _ in stored_events(db)]
    assert len(ids) == len(set(ids)) == 2500
    assert count(db, messages) == 2500
    assert report.duplicates > 0 or report.accepted == 2500 - accepted_before


async def test_a_poll_stopped_mid_cycle_resumes_in_the_next_process(db, make_poller, georeport, clock):
    first = make_poller(owner="node-1", max_window_days=1, timeout_seconds=5, retries=0)
    await started(first)
    base = clock()
    for i in range(1500):  # one every two minutes: 50 hours, three one-day windows
        georeport.add(f"S{i:05d}", base + timedelta(minutes=1 + 2 * i), phone=PHONE)
    clock.advance(hours=51)
    # the second window's query hangs: the process is stopped while waiting for it
    georeport.faults += [Fault("hang", "requests.json", skip=1)]
    task = asyncio.ensure_future(first.poll_once())
    await asyncio.wait_for(georeport.hanging.wait(), 5)
    done = count(db, events)
    assert 0 < done < 1500  # the first window's events are in, and its position saved
    await first.close()
    task.cancel()
    row = adapter_row(db)
    assert row["lease_owner"] is None  # released on the way out
    assert row["cursor"]["created_through"] > row["cursor"]["backfill_from"]
    second = make_poller(owner="node-2", max_window_days=1)
    report: CycleReport = await second.poll_once()
    assert report.ok, report.error
    ids = [e for e, _ in stored_events(db)]
    assert len(ids) == len(set(ids)) == 1500
    assert report.accepted == 1500 - done
