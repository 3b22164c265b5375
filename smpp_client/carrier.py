"""One carrier: its binds, its speed limit, and a queue of jobs sent as the windows allow.

A carrier is built from a :class:`~smpp_client.config.CarrierConfig` and its policies: a
:class:`~smpp_client.policies.throttle.ThrottlePolicy` (default AIMD) and a
:class:`~smpp_client.policies.rate.RateLimiter` spending it (default a token bucket); either is
one constructor argument. A job's text is turned into this carrier's parts when it is queued
(:mod:`smpp_client.submit_parts`) and sent by its :class:`~smpp_client.sending.SendQueue` while a
bind has room in its window and the limiter allows.

What an answer does to a job (:mod:`smpp_client.errors`):

- ESME_ROK: the part is accepted; when every part is, the job ends ``submitted``;
- ESME_RTHROTTLED / ESME_RMSGQFUL: the throttle policy lowers the rate and pauses; the part goes
  back to the front of the queue and is sent again after the pause, from memory: never dropped,
  never counted as a failed attempt;
- link lost / no answer in time: the part is sent again (another bind, or after reconnecting)
  up to twice, then the job ends ``retry``;
- other temporary errors: ``retry`` (a job with parts already accepted resends only its missing
  parts, from memory, a few times first);
- a routing error (the carrier's ``failover_on``) or an unusable message id: the owner (the pool)
  passes the job to the next carrier when routing allows, else ``retry`` for an unusable id;
- anything else is permanent: ``failed`` with the SMPP status.

A job nothing of which was sent by its deadline is handed back (``deadline``); at shutdown, or
when every link is down past a short grace and no other carrier can take it, it is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from .config import CarrierConfig
from .events import BindChanged
from .jobs import Job
from .message_ids import describe
from .pdu import Pdu
from .policies.rate import RateLimiter, TokenBucket
from .policies.throttle import AimdPolicy, ThrottlePolicy
from .sending import SendQueue
from .session import SessionListener, SmppSession
from .submit_parts import PartEncoder

log = structlog.get_logger("smpp_client")

# The default policy runs this much under the configured tps: the SMSC counts arrivals, which network
# and scheduling jitter bunch up; a contract of 100/s is never exceeded, not even by one message a minute.
RATE_MARGIN = 0.995

# (carrier name, deliver_sm or data_sm, respond) -> None; respond(status) sends its response
DeliverHandler = Callable[[str, Pdu, Callable[[int], None]], object]


class CarrierOwner(Protocol):
    """What a carrier asks of the pool it belongs to."""

    def hand_on(self, job: Job, status: int) -> None:
        """Route a job this carrier passed on (``status`` says why) to the next carrier, if any."""
        ...

    def others_accepting(self, carrier: Carrier) -> bool:
        """Whether another carrier could take this one's jobs now."""
        ...

    def room_changed(self) -> None:
        """A job ended or a bind came up: there may be room for more."""
        ...

    def bind_changed(self, change: BindChanged) -> None: ...


def default_throttle(config: CarrierConfig) -> AimdPolicy:
    return AimdPolicy(
        config.tps * RATE_MARGIN,
        min_rate=config.min_tps,
        decrease=config.throttle_decrease,
        pause_seconds=config.throttle_pause_seconds,
        recovery_per_second=config.recovery_per_second,
    )


class Carrier(SessionListener):
    def __init__(
        self,
        config: CarrierConfig,
        on_deliver: DeliverHandler,
        *,
        owner: CarrierOwner | None = None,
        throttle: ThrottlePolicy | None = None,
        rate_limiter: RateLimiter | None = None,
    ):
        self.config = config
        self.name = config.name
        self.owner = owner
        self.throttle = throttle if throttle is not None else default_throttle(config)
        self.limiter = rate_limiter if rate_limiter is not None else TokenBucket(self.throttle)
        self.parts = PartEncoder(config)

        def deliver(session: SmppSession, pdu: Pdu, respond: Callable[[int], None], patient: bool) -> None:
            on_deliver(self.name, pdu, respond, patient)

        self._deliver = deliver
        self.sessions = [SmppSession(c, deliver, listener=self) for c in config.sessions()]
        self._tx = [s for s in self.sessions if s.kind != "receiver"]  # SendQueue reads this list
        self._per_slot = len(self.sessions) // max(1, config.binds)  # 1 transceiver, or a pair
        self._slots: dict[int, list[asyncio.Task]] = {}  # the slots whose binds run: their tasks
        self._yielding = False  # the last slot is being given up: nothing new is taken
        self.sending = SendQueue(self.name, self._tx, self.limiter, self.throttle, config.failover_on, owner)
        self.down_grace = config.down_grace_seconds
        self._down_timer: asyncio.TimerHandle | None = None
        self._stopping = False
        self.bad_message_ids = 0  # ESME_ROK answers whose id could not be used

    # --- life ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Open every bind (a process alone with its carriers)."""
        for slot in range(self.config.binds):
            self.open_slot(slot)

    @property
    def slots(self) -> frozenset[int]:
        """The binds (slots 0..binds-1) this carrier runs here."""
        return frozenset(self._slots)

    def open_slot(self, slot: int) -> None:
        """Run bind ``slot`` (a transceiver, or a transmitter and receiver pair): several processes
        share a carrier's binds, each opening only the slots it holds."""
        if slot in self._slots or self._stopping or not 0 <= slot < self.config.binds:
            return
        first = slot * self._per_slot
        for i in range(first, first + self._per_slot):
            if self.sessions[i].state != "idle":  # ran before: a fresh session
                self.sessions[i] = SmppSession(self.sessions[i].config, self._deliver, listener=self)
        self._tx[:] = [s for s in self.sessions if s.kind != "receiver"]
        self._slots[slot] = [
            asyncio.create_task(s.run(), name=s.label) for s in self.sessions[first : first + self._per_slot]
        ]

    async def close_slot(self, slot: int, timeout: float = 5.0) -> None:
        """Stop bind ``slot``: the answers in flight are awaited, then it unbinds. When it was the
        last one here, what nothing was sent of goes back (released, to the process that takes the
        slot over) rather than to another carrier."""
        tasks = self._slots.pop(slot, None)
        if tasks is None:
            return
        last = not self._slots
        if last:
            self._yielding = True
            self.sending.release_untouched("bind handed to another process")
        first = slot * self._per_slot
        sessions = self.sessions[first : first + self._per_slot]
        await asyncio.gather(*(s.stop(timeout) for s in sessions), return_exceptions=True)
        for task in tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 2)
        if last:
            self.sending.finish_shutdown()
            self._yielding = False

    def share_rate(self, share: float) -> None:
        """Send at ``share`` (0 < share <= 1) of the carrier's speed limit: the part of its binds
        this process holds."""
        if share > 0:
            self.throttle.set_max_rate(self.config.tps * RATE_MARGIN * min(1.0, share))

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop sending (jobs not yet sent are released), wait for the answers in flight, unbind."""
        self._stopping = True
        self.sending.begin_shutdown()
        await asyncio.gather(*(s.stop(timeout) for s in self.sessions), return_exceptions=True)
        tasks = [task for slot_tasks in self._slots.values() for task in slot_tasks]
        self._slots.clear()
        for task in tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 2)
        if self._down_timer is not None:
            self._down_timer.cancel()
            self._down_timer = None
        self.sending.finish_shutdown()

    @property
    def is_bound(self) -> bool:
        return any(s.is_bound for s in self.sessions)

    @property
    def accepting(self) -> bool:
        """Bound with at least one bind that can submit, and not stopping."""
        return not self._stopping and not self._yielding and any(s.can_submit for s in self._tx)

    @property
    def window_total(self) -> int:
        return sum(s.window_size for s in self._tx if s.can_submit)

    @property
    def free_window(self) -> int:
        return sum(s.free_window for s in self._tx)

    def target(self) -> int:
        """Jobs worth holding in memory: about a second of traffic, at most one window more."""
        window = self.window_total
        if not window or self._stopping:
            return 0
        rate = self.throttle.rate(time.monotonic())
        return max(1, min(window, math.ceil(rate)) + min(window, math.ceil(rate / 4)))

    @property
    def load(self) -> int:
        """Jobs of this carrier in memory (queued, in a window, or waiting to resend)."""
        return self.sending.load

    def room(self) -> int:
        return max(0, self.target() - self.sending.load)

    def enqueue(self, job: Job) -> None:
        """Take a job: its text becomes this carrier's parts, queued by the job's rank."""
        self.sending.enqueue(job, self.parts.encode(job.msisdn, job.text))

    # --- what the binds report ----------------------------------------------------------------

    def session_bound(self, session: SmppSession) -> None:
        self.sending.schedule_pump()
        if self.owner is not None:
            self.owner.bind_changed(BindChanged(self.name, session.label, session.state, True))
            self.owner.room_changed()

    def session_down(self, session: SmppSession) -> None:
        if self.owner is not None:
            self.owner.bind_changed(BindChanged(self.name, session.label, session.state, False))
        if self._stopping or self._yielding or any(s.can_submit for s in self._tx):
            self.sending.schedule_pump()
            return
        # every link is down: the jobs waiting here go to another carrier at once; if none can
        # take them they wait a moment (a link usually comes back in a second), then go back
        if self.owner is not None and self.owner.others_accepting(self):
            self.sending.hand_over()
        elif self._down_timer is None:
            self._down_timer = asyncio.get_running_loop().call_later(self.down_grace, self._down_grace_over)

    def _down_grace_over(self) -> None:
        self._down_timer = None
        if not self._stopping and not any(s.can_submit for s in self._tx):
            self.sending.hand_over()

    def window_freed(self, session: SmppSession) -> None:
        self.sending.window_freed()

    def unusable_message_id(self, session: SmppSession, raw: bytes) -> None:
        self.bad_message_ids += 1
        if self.bad_message_ids == 1:  # once per carrier: /metrics counts the others
            log.warning(
                "smsc answered submit_sm with an unusable message id; such submits fail on this carrier",
                carrier=self.name,
                session=session.label,
                message_id=describe(raw),
            )

    # --- numbers ------------------------------------------------------------------------------

    def snapshot(self, now: float) -> dict:
        """This carrier's state and counters, its binds' too (for /metrics and the dashboard)."""
        sending = self.sending
        return {
            "carrier": self.name,
            "rate_limit": self.config.tps,
            "binds_held": len(self._slots),  # the slots of its binds this process runs
            "rate": self.throttle.rate(now),
            "paused": now < self.throttle.paused_until,
            "throttles": sending.throttles,
            "rate_decreases": self.throttle.decreases,
            "parts_sent": sending.parts_sent,
            "parts_accepted": sending.parts_accepted,
            "messages_submitted": sending.messages_submitted,
            "submit_rate": sending.submit_rate(now),
            "errors": dict(sending.errors),
            "queued": len(sending.queue),
            "in_memory": sending.load,
            "failovers": sending.failovers_out,
            "bad_message_ids": self.bad_message_ids,
            "binds": [s.snapshot() for s in self.sessions],
        }
