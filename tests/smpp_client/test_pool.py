"""Carriers and the pool against raw SMSCs: throttling, errors by class, failover, long messages."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime

import pytest

from smpp_client import pdu as codec
from smpp_client.carrier import Carrier
from smpp_client.concat import parse_udh
from smpp_client.config import CarrierConfig
from smpp_client.constants import Cmd, MessageState, Status
from smpp_client.errors import INVALID_MESSAGE_ID, LINK_LOST, NO_ROUTE, parse_statuses
from smpp_client.events import BindChanged
from smpp_client.jobs import Job, SendOutcome
from smpp_client.pool import CarrierPool
from smpp_client.receipts import receipt_text

from .link_events import AcknowledgingEvents
from .raw_smsc import RawSmsc, Scripted, all_bound

LONG = "Aviso de la alcaldia: " + "corte de agua programado en su colonia " * 8  # 3 parts


def carrier_config(name: str, port: int, **extra) -> CarrierConfig:
    if "failover_on" in extra:
        extra["failover_on"] = parse_statuses(extra["failover_on"])
    options = {
        "reconnect_min_seconds": 0.02,
        "reconnect_max_seconds": 0.1,
        "response_timeout_seconds": 2,
        "throttle_pause_seconds": 0.1,
        **extra,
    }
    return CarrierConfig(
        name=name,
        host="127.0.0.1",
        port=port,
        system_id="smsgw",
        password="smsgw",
        source_addr="30311",
        **options,
    )


class Outcomes:
    def __init__(self):
        self.items: list[tuple[Job, SendOutcome]] = []
        self.changed = asyncio.Event()

    def __call__(self, job, outcome):
        self.items.append((job, outcome))
        self.changed.set()

    async def wait(self, count: int, timeout: float = 10) -> list[SendOutcome]:
        async def until():
            while len(self.items) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), timeout)
        return [o for _, o in self.items]


def job(outcomes, text="hola", msisdn="+525512345678", **kw) -> Job:
    return Job(msisdn, text, outcomes, **kw)


async def started_pool(*carriers, events: AcknowledgingEvents | None = None) -> CarrierPool:
    pool = CarrierPool(list(carriers), events or AcknowledgingEvents())
    pool.start()
    assert await pool.wait_bound(5)
    await all_bound([s for c in pool.carriers.values() for s in c.sessions])
    assert all(c.accepting for c in pool.carriers.values())
    return pool


async def test_submitted_with_encoding_segments_and_ids():
    async with RawSmsc() as smsc, Scripted(smsc) as script:
        pool = await started_pool(carrier_config("a", smsc.port))
        outcomes = Outcomes()
        pool.submit(job(outcomes))
        pool.submit(job(outcomes, LONG))
        first, second = await outcomes.wait(2)
        assert (first.kind, first.carrier, first.smsc_ids, first.encoding, first.segments) == (
            "submitted",
            "a",
            ["id1"],
            "gsm7",
            1,
        )
        assert second.kind == "submitted" and len(second.smsc_ids) == second.segments == 3
        refs = {parse_udh(p.fields["short_message"])[0].reference for p in script.received[1:]}
        assert len(refs) == 1  # one reference for the three parts
        assert script.received[0].fields["registered_delivery"] == 1
        await pool.stop(1)


async def test_throttled_parts_are_resent_from_memory_after_a_pause():
    def answer(p, n):
        return (Status.ESME_RTHROTTLED, "") if n <= 3 else (0, f"id{n}")

    async with RawSmsc() as smsc, Scripted(smsc, answer) as script:
        pool = await started_pool(carrier_config("a", smsc.port, tps=200))
        carrier = pool.carriers["a"]
        outcomes = Outcomes()
        for i in range(3):
            pool.submit(job(outcomes, f"hola {i}", msisdn=f"+52551234567{i}"))
        results = await outcomes.wait(3)
        assert [o.kind for o in results] == ["submitted"] * 3  # never a retry through the outbox
        status = carrier.snapshot(time.monotonic())
        assert status["throttles"] == 3 and status["rate_decreases"] == 1  # one episode
        assert status["rate"] < 200
        # each message went twice, the same bytes
        texts = [p.fields["short_message"] for p in script.received]
        assert sorted(texts[:3]) == sorted(texts[3:])
        await pool.stop(1)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (Status.ESME_RINVDSTADR, "failed"),
        (Status.ESME_RINVSRCADR, "failed"),
        (Status.ESME_RSYSERR, "retry"),
        (Status.ESME_RX_T_APPN, "retry"),
    ],
)
async def test_errors_by_class(status, kind):
    async with RawSmsc() as smsc, Scripted(smsc, lambda p, n: (status, "")) as script:
        pool = await started_pool(carrier_config("a", smsc.port))
        outcomes = Outcomes()
        pool.submit(job(outcomes))
        (outcome,) = await outcomes.wait(1)
        assert (outcome.kind, outcome.status, outcome.carrier) == (kind, status, "a")
        assert len(script.received) == 1
        await pool.stop(1)


async def test_a_routing_error_fails_over_to_the_next_carrier():
    async with (
        RawSmsc() as smsc_a,
        RawSmsc() as smsc_b,
        Scripted(smsc_a, lambda p, n: (Status.ESME_RINVDSTADR, "")) as a,
        Scripted(smsc_b) as b,
    ):
        pool = await started_pool(
            carrier_config("a", smsc_a.port, failover_on=["ESME_RINVDSTADR"]),
            carrier_config("b", smsc_b.port),
        )
        outcomes = Outcomes()
        pool.submit(job(outcomes))
        (outcome,) = await outcomes.wait(1)
        assert (outcome.kind, outcome.carrier) == ("submitted", "b")
        assert outcome.route == "a > b (after a: ESME_RINVDSTADR)"
        assert len(a.received) == len(b.received) == 1
        assert pool.carriers["a"].snapshot(time.monotonic())["failovers"] == 1
        await pool.stop(1)


async def test_an_unusable_message_id_fails_over_and_is_never_handed_on():
    async with (
        RawSmsc() as smsc_a,
        RawSmsc() as smsc_b,
        Scripted(smsc_a, lambda p, n: (0, b"x" * 65 + b"\x00")) as a,
        Scripted(smsc_b) as b,
    ):
        pool = await started_pool(carrier_config("a", smsc_a.port), carrier_config("b", smsc_b.port))
        outcomes = Outcomes()
        for i in range(3):
            pool.submit(job(outcomes, f"m{i}", msisdn=f"+52551234500{i}"))
        results = await outcomes.wait(3)
        assert [(o.kind, o.carrier) for o in results] == [("submitted", "b")] * 3
        assert all(o.smsc_ids[0].startswith("id") for o in results)
        assert results[0].route == "a > b (after a: unusable message id)"
        carrier = pool.carriers["a"]
        status = carrier.snapshot(time.monotonic())
        assert status["bad_message_ids"] == 3 and status["errors"] == {INVALID_MESSAGE_ID: 3}
        assert len(a.received) == len(b.received) == 3
        await pool.stop(1)


async def test_an_unusable_message_id_with_no_other_carrier_goes_back_to_the_outbox():
    async with RawSmsc() as smsc, Scripted(smsc, lambda p, n: (0, b"caf\xe9\x00")) as script:
        pool = await started_pool(carrier_config("a", smsc.port))
        outcomes = Outcomes()
        pool.submit(job(outcomes))
        (outcome,) = await outcomes.wait(1)
        assert (outcome.kind, outcome.status, outcome.smsc_ids) == ("retry", INVALID_MESSAGE_ID, [])
        assert outcome.error == "unusable message id"
        assert len(script.received) == 1  # not resent from memory: the SMSC may well deliver it
        await pool.stop(1)


async def test_routing_error_on_every_carrier_fails_with_the_last_code():
    async with (
        RawSmsc() as smsc_a,
        RawSmsc() as smsc_b,
        Scripted(smsc_a, lambda p, n: (Status.ESME_RSUBMITFAIL, "")),
        Scripted(smsc_b, lambda p, n: (Status.ESME_RSUBMITFAIL, "")),
    ):
        pool = await started_pool(carrier_config("a", smsc_a.port), carrier_config("b", smsc_b.port))
        outcomes = Outcomes()
        pool.submit(job(outcomes))
        (outcome,) = await outcomes.wait(1)
        assert (outcome.kind, outcome.status) == ("failed", Status.ESME_RSUBMITFAIL)
        assert "a: ESME_RSUBMITFAIL" in outcome.route and "b: ESME_RSUBMITFAIL" in outcome.route
        await pool.stop(1)


async def test_jobs_move_to_another_carrier_when_every_link_of_theirs_is_down():
    async with RawSmsc() as smsc_a, RawSmsc() as smsc_b, Scripted(smsc_a, lambda p, n: None) as a:
        async with Scripted(smsc_b) as b:
            pool = await started_pool(
                carrier_config("a", smsc_a.port, window=2, reconnect_min_seconds=5, reconnect_max_seconds=5),
                carrier_config("b", smsc_b.port),
            )
            outcomes = Outcomes()
            for i in range(5):
                pool.submit(job(outcomes, f"m{i}", msisdn=f"+52551234500{i}"))
            await a.wait_received(2)  # two in a's window, unanswered; three queued behind
            a.drop_all()
            results = await outcomes.wait(5)
            assert [o.carrier for o in results] == ["b"] * 5
            assert all(o.kind == "submitted" for o in results)
            # the two in flight on the dropped link may be duplicates; the three queued are not
            assert len(b.received) == 5
            await pool.stop(1)


async def test_no_bound_carrier_releases_the_job():
    outcomes = Outcomes()
    pool = CarrierPool([carrier_config("a", 9)], AcknowledgingEvents())
    pool.submit(job(outcomes))
    (outcome,) = await outcomes.wait(1)
    assert (outcome.kind, outcome.status) == ("release", NO_ROUTE)


async def test_a_lost_link_resends_on_another_bind_then_gives_the_message_back():
    async with RawSmsc() as smsc, Scripted(smsc, lambda p, n: None) as script:
        pool = await started_pool(carrier_config("a", smsc.port, binds=2))
        await all_bound(pool.carriers["a"].sessions)
        outcomes = Outcomes()
        pool.submit(job(outcomes))
        sessions = pool.carriers["a"].sessions
        for attempt in range(1, 4):
            await script.wait_received(attempt)
            await all_bound(sessions)
            script.received_on[-1].close()  # the link that has it dies; the other bind lives
        (outcome,) = await outcomes.wait(1)
        # sent three times (twice again from memory), then back to the outbox with backoff
        assert (outcome.kind, outcome.status) == ("retry", LINK_LOST)
        assert len(script.received) == 3
        await pool.stop(1)


async def test_the_only_link_lost_for_long_gives_the_window_back_as_an_attempt_and_the_queue_unsent():
    async with RawSmsc() as smsc, Scripted(smsc, lambda p, n: None) as script:
        pool = await started_pool(  # the link does not come back within the grace
            carrier_config(
                "a",
                smsc.port,
                window=1,
                reconnect_min_seconds=2,
                reconnect_max_seconds=2,
                link_down_grace_seconds=0.1,
            )
        )
        outcomes = Outcomes()
        pool.submit(job(outcomes, "on the wire"))
        pool.submit(job(outcomes, "queued"))
        await script.wait_received(1)
        script.drop_all()
        await outcomes.wait(2)
        results = {j.text: o for j, o in outcomes.items}
        assert (results["on the wire"].kind, results["on the wire"].status) == ("retry", LINK_LOST)
        assert results["queued"].kind == "release"
        await pool.stop(1)


async def test_partly_accepted_long_message_resends_only_the_missing_part():
    def answer(p, n):
        return (Status.ESME_RSYSERR, "") if n == 2 else (0, f"id{n}")

    async with RawSmsc() as smsc, Scripted(smsc, answer) as script:
        pool = await started_pool(carrier_config("a", smsc.port))
        outcomes = Outcomes()
        pool.submit(job(outcomes, LONG))
        (outcome,) = await outcomes.wait(1)
        assert outcome.kind == "submitted" and outcome.smsc_ids == ["id1", "id4", "id3"]
        seqs = [parse_udh(p.fields["short_message"])[0].seq for p in script.received]
        assert seqs == [1, 2, 3, 2]
        bodies = [p.fields["short_message"] for p in script.received]
        assert bodies[1] == bodies[3]  # the same part, the same reference
        await pool.stop(1)


async def test_permanent_error_on_one_part_fails_the_message_with_its_code():
    def answer(p, n):
        return (Status.ESME_RINVMSGLEN, "") if n == 3 else (0, f"id{n}")

    async with RawSmsc() as smsc, Scripted(smsc, answer):
        pool = await started_pool(carrier_config("a", smsc.port))
        outcomes = Outcomes()
        pool.submit(job(outcomes, LONG))
        (outcome,) = await outcomes.wait(1)
        assert (outcome.kind, outcome.status) == ("failed", Status.ESME_RINVMSGLEN)
        assert "1 of 3 parts not accepted" in outcome.error
        await pool.stop(1)


async def test_jobs_past_their_deadline_never_go_out():
    async with RawSmsc() as smsc, Scripted(smsc) as script:
        pool = await started_pool(carrier_config("a", smsc.port))
        outcomes = Outcomes()
        now = time.monotonic()
        pool.submit(job(outcomes, deadline=now - 1))
        pool.submit(job(outcomes, deadline=now - 0.001))
        pool.submit(job(outcomes, deadline=math.inf))
        results = sorted((o.kind, o.error) for o in await outcomes.wait(3))
        reason = "deadline reached before submission"
        assert results == [("deadline", reason), ("deadline", reason), ("submitted", None)]
        assert len(script.received) == 1
        await pool.stop(1)


async def test_the_speed_limit_is_shared_by_the_binds():
    async with RawSmsc() as smsc, Scripted(smsc) as script:
        pool = await started_pool(carrier_config("a", smsc.port, tps=50, binds=2))
        outcomes = Outcomes()
        started = time.monotonic()
        for i in range(30):
            pool.submit(job(outcomes, f"m{i}", msisdn=f"+5255123450{i:02d}"))
        await outcomes.wait(30)
        elapsed = time.monotonic() - started
        # 30 segments at 50/s with a bucket of 5: about 0.5 s, whatever the number of binds
        assert 0.4 <= elapsed <= 1.5, elapsed
        assert len({c for c in script.conns}) == 2
        await pool.stop(1)


async def test_stop_releases_queued_jobs_and_waits_for_those_in_flight():
    answers = []

    async with RawSmsc() as smsc, Scripted(smsc, lambda p, n: answers.append(p) or None) as script:
        pool = await started_pool(carrier_config("a", smsc.port, window=2))
        outcomes = Outcomes()
        for i in range(5):
            pool.submit(job(outcomes, f"m{i}"))
        await script.wait_received(2)
        stopping = asyncio.create_task(pool.stop(5))
        released = await outcomes.wait(3)
        assert [o.kind for o in released] == ["release"] * 3
        # the two in flight are answered now
        conn = script.conns[0]
        for p in answers:
            conn.respond(p, message_id=f"late{p.sequence}")
        await asyncio.wait_for(stopping, 5)
        kinds = sorted(o.kind for o in await outcomes.wait(5))
        assert kinds == ["release"] * 3 + ["submitted"] * 2


async def test_transmitter_receiver_pairs():
    async with RawSmsc() as smsc, Scripted(smsc) as script:
        pool = await started_pool(carrier_config("a", smsc.port, bind_mode="transmitter_receiver", binds=2))
        carrier: Carrier = pool.carriers["a"]
        assert sorted(s.kind for s in carrier.sessions) == ["receiver"] * 2 + ["transmitter"] * 2
        await all_bound(carrier.sessions)
        assert carrier.window_total == 20  # only transmitters take submits
        outcomes = Outcomes()
        pool.submit(job(outcomes))
        (outcome,) = await outcomes.wait(1)
        assert outcome.kind == "submitted"
        await pool.stop(1)
        assert len(script.conns) == 4


async def test_a_short_outage_of_the_only_link_keeps_the_jobs_in_memory():
    async with RawSmsc() as smsc, Scripted(smsc, lambda p, n: None if n == 1 else (0, f"id{n}")) as script:
        pool = await started_pool(carrier_config("a", smsc.port, window=1))
        outcomes = Outcomes()
        pool.submit(job(outcomes, "on the wire"))
        pool.submit(job(outcomes, "queued"))
        await script.wait_received(1)
        script.drop_all()  # the link comes back within the grace period
        results = await outcomes.wait(2)
        assert [o.kind for o in results] == ["submitted", "submitted"]
        assert len(script.received) == 3  # the one on the wire went again
        await pool.stop(1)


async def test_an_emergency_overtakes_what_waits_in_the_carrier_queue():
    held = []

    def answer(p, n):
        if n == 1:
            held.append(p)
            return None
        return (0, f"id{n}")

    async with RawSmsc() as smsc, Scripted(smsc, answer) as script:
        pool = await started_pool(carrier_config("a", smsc.port, window=1))
        outcomes = Outcomes()
        pool.submit(job(outcomes, "first", rank=2))  # fills the window, unanswered for now
        await script.wait_received(1)
        for i in range(3):
            pool.submit(job(outcomes, f"normal {i}", rank=2))
        pool.submit(job(outcomes, "EMERGENCIA", rank=0))
        script.conns[0].respond(held[0], message_id="id1")
        await outcomes.wait(5)
        texts = [p.fields["short_message"].decode() for p in script.received]
        assert texts == ["first", "EMERGENCIA", "normal 0", "normal 1", "normal 2"]
        await pool.stop(1)


async def test_binds_and_receipts_reach_the_handler_and_room_is_announced():
    room = asyncio.Event()
    events = AcknowledgingEvents()
    async with RawSmsc() as smsc, Scripted(smsc) as script:
        pool = CarrierPool([carrier_config("a", smsc.port)], events, on_room=room.set)
        pool.start()
        await asyncio.wait_for(events.bind_seen.wait(), 5)
        await asyncio.wait_for(room.wait(), 5)  # a bind up: room to claim
        assert events.binds == [BindChanged("a", "a#0", "bound", True)]
        text = receipt_text("id7", "DELIVRD", datetime(2026, 11, 29, 10), datetime(2026, 11, 29, 10, 1))
        script.conns[0].send(codec.make(Cmd.DELIVER_SM, 5, esm_class=0x04, short_message=text.encode()))
        await asyncio.wait_for(events.arrived.wait(), 5)
        (receipt,) = events.receipts
        assert (receipt.carrier, receipt.message_id, receipt.state) == ("a", "id7", MessageState.DELIVERED)
        events.bind_seen.clear()
        script.drop_all()
        await asyncio.wait_for(events.bind_seen.wait(), 5)
        assert events.binds[-1] == BindChanged("a", "a#0", "down", False)
        await pool.stop(1)


async def test_a_paused_carrier_takes_no_job_and_failover_passes_it_by():
    async with (
        RawSmsc() as smsc_a,
        RawSmsc() as smsc_b,
        RawSmsc() as smsc_c,
        Scripted(smsc_a, lambda p, n: (Status.ESME_RINVDSTADR, "")) as a,
        Scripted(smsc_b) as b,
        Scripted(smsc_c) as c,
    ):
        pool = await started_pool(
            carrier_config("a", smsc_a.port, failover_on=["ESME_RINVDSTADR"]),
            carrier_config("b", smsc_b.port),
            carrier_config("c", smsc_c.port),
        )
        pool.set_paused(frozenset({"b"}))
        outcomes = Outcomes()
        pool.submit(job(outcomes))  # a refuses the route; b, next in order, is paused
        pool.submit(job(outcomes, first_choice="b"))  # routed to b before it was paused
        results = await outcomes.wait(2)
        assert [(o.kind, o.carrier) for o in results] == [("submitted", "c"), ("submitted", "c")]
        assert len(b.received) == 0 and len(c.received) == 2 and len(a.received) == 2
        pool.set_paused(frozenset())
        pool.submit(job(outcomes, first_choice="b"))
        (_, _, resumed) = await outcomes.wait(3)
        assert resumed.carrier == "b"
        await pool.stop(1)
