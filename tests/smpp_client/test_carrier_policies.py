"""A carrier is built with its policies: swapping the rate limiter or the throttle policy takes one
constructor argument, and the carrier spends and slows down as the given policy says."""

from __future__ import annotations

import time

from smpp_client.carrier import Carrier
from smpp_client.config import CarrierConfig
from smpp_client.constants import Status
from smpp_client.jobs import Job

from .raw_smsc import RawSmsc, Scripted, all_bound
from .test_pool import LONG, Outcomes


class RecordingLimiter:
    """Lets every part through and remembers the segments each one spent."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    def take(self, tokens: float, now: float) -> float:
        self.taken.append(tokens)
        return 0.0


class SteadyRate:
    """A throttle policy that never slows down: a throttled part is simply sent again."""

    epoch = 0
    paused_until = 0.0
    decreases = 0

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self.throttled = 0

    def rate(self, now: float) -> float:
        return self._rate

    def on_throttle(self, now: float, epoch: int | None = None) -> bool:
        self.throttled += 1
        return False


def config(port: int, **extra) -> CarrierConfig:
    return CarrierConfig(
        name="a",
        host="127.0.0.1",
        port=port,
        system_id="smsgw",
        password="smsgw",
        source_addr="30311",
        reconnect_min_seconds=0.02,
        reconnect_max_seconds=0.1,
        **extra,
    )


async def started(carrier: Carrier) -> Carrier:
    carrier.start()
    await all_bound(carrier.sessions)
    return carrier


def acknowledge(carrier: str, pdu, respond) -> None:
    respond(Status.ESME_ROK)


async def test_a_swapped_rate_limiter_is_what_the_carrier_spends():
    async with RawSmsc() as smsc, Scripted(smsc) as script:
        limiter = RecordingLimiter()
        carrier = await started(Carrier(config(smsc.port), acknowledge, rate_limiter=limiter))
        outcomes = Outcomes()
        carrier.enqueue(Job("+525512345678", "hola", outcomes))
        carrier.enqueue(Job("+525512345679", LONG, outcomes))
        assert [o.kind for o in await outcomes.wait(2)] == ["submitted", "submitted"]
        assert limiter.taken == [1, 1, 1, 1]  # a part of a long message spends one segment
        assert len(script.received) == 4
        await carrier.stop(1)


async def test_a_message_the_smsc_segments_spends_all_its_segments_at_once():
    async with RawSmsc() as smsc, Scripted(smsc) as script:
        limiter = RecordingLimiter()
        carrier = await started(
            Carrier(config(smsc.port, concat="payload"), acknowledge, rate_limiter=limiter)
        )
        outcomes = Outcomes()
        carrier.enqueue(Job("+525512345678", LONG, outcomes))
        (outcome,) = await outcomes.wait(1)
        assert (outcome.kind, outcome.segments) == ("submitted", 3)
        assert limiter.taken == [3] and len(script.received) == 1
        await carrier.stop(1)


async def test_a_swapped_throttle_policy_decides_what_a_throttle_does():
    def answer(p, n):
        return (Status.ESME_RTHROTTLED, "") if n <= 3 else (0, f"id{n}")

    async with RawSmsc() as smsc, Scripted(smsc, answer) as script:
        steady = SteadyRate(200)
        carrier = await started(Carrier(config(smsc.port, tps=200), acknowledge, throttle=steady))
        outcomes = Outcomes()
        for i in range(3):
            carrier.enqueue(Job(f"+52551234567{i}", f"hola {i}", outcomes))
        assert [o.kind for o in await outcomes.wait(3)] == ["submitted"] * 3  # resent from memory
        assert steady.throttled == 3 and len(script.received) == 6
        status = carrier.snapshot(time.monotonic())
        assert (status["throttles"], status["rate_decreases"], status["rate"]) == (3, 0, 200)
        await carrier.stop(1)
