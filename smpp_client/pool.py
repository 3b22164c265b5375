"""Carriers and their binds: turns outbox messages into submit_sm PDUs on the right links.

A :class:`Job` is one claimed message on its way to an SMSC: its text split into parts for the
carrier that has it (UDH reference from that carrier's per-destination counter), each part's
submit_sm body encoded once. Each :class:`Carrier` keeps a queue of jobs and a *pump*: a plain
callback, run when something changes (a job queued, a window slot freed, a bind up, the speed
limit allowing the next segment), that sends parts while a bind has room in its window and the
rate limiter has tokens. No task or future per message.

What an answer does to a job (:mod:`smpp_client.errors`):

- ESME_ROK: the part is accepted; when every part is, the job ends ``submitted``;
- ESME_RTHROTTLED / ESME_RMSGQFUL: the carrier's rate is lowered and it pauses (AIMD,
  :mod:`smpp_client.throttle`); the part goes back to the front of the queue and is sent again
  after the pause, from memory: never dropped, never counted as a failed attempt;
- link lost / no answer in time: the part is sent again (another bind, or after reconnecting)
  up to twice, then the message goes back to the outbox with backoff;
- other temporary errors: the message goes back to the outbox with backoff (a message with
  parts already accepted resends only its missing parts, from memory);
- a routing error (the carrier's ``failover_on``): the next carrier in the route gets the job;
- ESME_ROK with a message id that cannot be used (INVALID_MESSAGE_ID): the next carrier gets the
  job when routing allows, else it goes back to the outbox with backoff (logged once per carrier,
  counted in ``bad_message_ids``);
- anything else is permanent: the job ends ``failed`` with the SMPP status.

A job still in memory when its lease nears its end, or whose validity ended before it was sent,
is handed back (``release``) or expired, so it is never held past its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from . import pdu as codec
from .concat import ConcatMethod, ReferenceCounter, split
from .constants import Cmd
from .errors import (
    DEFAULT_FAILOVER_ON,
    LINK_LOST,
    NO_ROUTE,
    TEMPORARY_CLASSES,
    ErrorClass,
    classify,
    error_name,
    parse_statuses,
)
from .message_ids import describe
from .pdu import Pdu
from .rate import RateLimiter
from .router import Router
from .session import Pending, SessionConfig, SessionListener, SmppSession
from .text_encoding import EncodedText, Transliteration, encode_text
from .throttle import AimdPolicy

log = structlog.get_logger("smpp_client")

_SUBMIT_SM = int(Cmd.SUBMIT_SM)
LINK_RETRIES = 2  # resends from memory after a lost link or a timeout, before the outbox backoff
PARTIAL_RETRIES = 5  # resends of the missing parts of a partly accepted message
PARTIAL_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)
# The limiter runs this much under the configured tps: the SMSC counts arrivals, which network and
# scheduling jitter bunch up; a contract of 100/s is never exceeded, not even by one message a minute.
RATE_MARGIN = 0.995

# (carrier name, deliver_sm, respond) -> None; respond(status) sends the deliver_sm_resp
DeliverCallback = Callable[[str, Pdu, Callable[[int], None]], Any]


# --- what happened to a message ---------------------------------------------------------------


SUBMITTED = "submitted"  # every part accepted
RETRY = "retry"  # temporary failure: back to the outbox with backoff (a real attempt)
FAILED = "failed"  # permanent failure
RELEASE = "release"  # not sent (no bound carrier, lease ending, shutdown): back to the outbox, not an attempt
EXPIRED = "expired"  # validity ended before it could be sent


@dataclass(slots=True)
class SendOutcome:
    kind: str
    carrier: str | None
    smsc_ids: list[str] = field(default_factory=list)
    status: int | None = None  # SMPP command_status (or a negative pseudo status) of the failure
    error: str | None = None
    encoding: str | None = None
    segments: int | None = None
    route: str | None = None  # how the carrier was chosen, failovers included

    @property
    def ok(self) -> bool:
        return self.kind == SUBMITTED


@functools.lru_cache(maxsize=4096)
def _encoded(body: str, concat: str) -> EncodedText:
    # the stored body is already transliterated by the composer: send it as it is
    return encode_text(body, Transliteration.OFF, concat)


class Job:
    """One message in memory, from claim to outcome."""

    __slots__ = (
        "accepted",
        "bodies",
        "carrier",
        "costs",
        "ctx",
        "done",
        "encoding",
        "expires_at",
        "failure",
        "link_tries",
        "msisdn",
        "outstanding",
        "partial_tries",
        "priority",
        "queued",
        "release_at",
        "route",
        "route_note",
        "segments",
        "smsc_ids",
        "text",
        "tried",
        "unsent",
    )

    def __init__(
        self,
        msisdn: str,
        text: str,
        done: Callable[[Job, SendOutcome], None],
        expires_at: float = math.inf,
        release_at: float = math.inf,
        ctx: Any = None,
        priority: int = 2,
    ):
        self.msisdn = msisdn
        self.priority = priority  # 0 = emergency: overtakes what waits in the carrier's queue
        self.text = text
        self.done = done
        self.expires_at = expires_at  # monotonic: validity end
        self.release_at = release_at  # monotonic: give it back to the outbox if unsent by then
        self.ctx = ctx
        self.carrier: Carrier | None = None
        self.route: list[str] = []
        self.route_note = ""
        self.tried: list[tuple[str, int]] = []
        self._reset_parts()

    def _reset_parts(self) -> None:
        self.bodies: list[bytes] = []
        self.costs: list[int] = []
        self.smsc_ids: list[str | None] = []
        self.unsent: list[int] = []
        self.outstanding = 0
        self.accepted = 0
        self.failure: tuple[int, ErrorClass] | None = None
        self.link_tries = 0
        self.partial_tries = 0
        self.queued = False
        self.encoding = ""
        self.segments = 0

    @property
    def total(self) -> int:
        return len(self.bodies)

    @property
    def untouched(self) -> bool:
        """Nothing of it is at the SMSC nor on the way: it can go elsewhere."""
        return self.accepted == 0 and self.outstanding == 0


class PartSend(Pending):
    """One submit_sm in a bind's window."""

    __slots__ = ("carrier", "epoch", "index", "job")

    def __init__(self, carrier: Carrier, job: Job, index: int, epoch: int):
        self.carrier = carrier
        self.job = job
        self.index = index
        self.epoch = epoch

    def resolve(self, status: int, message_id: str, pdu) -> None:
        self.carrier._answered(self, status, message_id)

    def fail(self, code: int) -> None:
        self.carrier._answered(self, code, "")


class Carrier(SessionListener):
    def __init__(
        self, settings, source_addr: str, on_deliver: DeliverCallback, pool: CarrierPool | None = None
    ):
        self.settings = settings
        self.name = settings.name
        self.source_addr = source_addr
        self.pool = pool
        g = functools.partial(getattr, settings)
        self.policy = AimdPolicy(
            settings.tps * RATE_MARGIN,
            min_rate=g("min_tps", 1.0),
            decrease=g("throttle_decrease", 0.5),
            pause_seconds=g("throttle_pause_seconds", 1.0),
            recovery_per_second=g("recovery_per_second", None),
        )
        self.limiter = RateLimiter(self.policy)
        self.concat = ConcatMethod(settings.concat)
        self.references = ReferenceCounter(bits=16 if self.concat == ConcatMethod.UDH16 else 8)
        self.failover_on = parse_statuses(g("failover_on", DEFAULT_FAILOVER_ON))
        self._fields = {
            "source_addr_ton": settings.source_addr_ton,
            "source_addr_npi": settings.source_addr_npi,
            "source_addr": source_addr,
            "dest_addr_ton": settings.dest_addr_ton,
            "dest_addr_npi": settings.dest_addr_npi,
            "registered_delivery": 1,
        }
        mode = g("bind_mode", "transceiver")
        kinds = ["transceiver"] if mode == "transceiver" else ["transmitter", "receiver"]
        self.sessions: list[SmppSession] = []

        def deliver(session: SmppSession, pdu: Pdu, respond: Callable[[int], None]) -> None:
            on_deliver(self.name, pdu, respond)

        for i in range(settings.binds):
            for kind in kinds:
                config = SessionConfig(
                    carrier=settings.name,
                    host=settings.host,
                    port=settings.port,
                    system_id=settings.system_id,
                    password=settings.password,
                    system_type=settings.system_type,
                    window=settings.window,
                    enquire_link_seconds=settings.enquire_link_seconds,
                    response_timeout_seconds=settings.response_timeout_seconds,
                    reconnect_min_seconds=settings.reconnect_min_seconds,
                    reconnect_max_seconds=settings.reconnect_max_seconds,
                    max_consecutive_timeouts=g("max_consecutive_timeouts", 3),
                    bind_kind=kind,
                )
                self.sessions.append(SmppSession(config, deliver, index=i, listener=self))
        self._tx = [s for s in self.sessions if s.kind != "receiver"]
        self.queue: deque[Job] = deque()
        self.load = 0  # jobs of this carrier in memory (queued, in a window, or waiting to resend)
        self._rr = 0
        self._pump_handle: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._held: dict[Job, asyncio.TimerHandle] = {}  # partly accepted jobs waiting to resend
        self._down_timer: asyncio.TimerHandle | None = None
        # how long jobs wait for a link to come back before they go back to the outbox
        self.down_grace = min(5.0, max(1.0, 2 * settings.reconnect_min_seconds))
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        # counters (metrics)
        self.parts_sent = 0
        self.parts_accepted = 0
        self.throttles = 0
        self.errors: Counter[int] = Counter()
        self.messages_submitted = 0
        self.failovers_out = 0
        self.bad_message_ids = 0
        self._rate_window: deque[tuple[int, int]] = deque(maxlen=12)

    # --- life ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.create_task(s.run(), name=s.label) for s in self.sessions]

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop sending (messages not yet sent go back to the outbox), wait for the answers in
        flight, unbind."""
        self._stopping = True
        self._release_queue("shutting down")
        await asyncio.gather(*(s.stop(timeout) for s in self.sessions), return_exceptions=True)
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 2)
        for job, handle in list(self._held.items()):
            handle.cancel()
            self._resume_held(job)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._down_timer is not None:
            self._down_timer.cancel()
            self._down_timer = None
        self._release_queue("shutting down")
        for job in list(self.queue):  # partly sent messages whose missing parts cannot go now
            self.queue.remove(job)
            job.queued = False
            if not job.outstanding:
                self._give_up_partial(job, LINK_LOST)

    @property
    def is_bound(self) -> bool:
        return any(s.is_bound for s in self.sessions)

    @property
    def accepting(self) -> bool:
        """Bound with at least one bind that can submit, and not stopping."""
        return not self._stopping and any(s.can_submit for s in self._tx)

    @property
    def window_total(self) -> int:
        return sum(s.window for s in self._tx if s.can_submit)

    @property
    def free_window(self) -> int:
        return sum(s.free_window for s in self._tx)

    def target(self) -> int:
        """Jobs worth holding in memory: about a second of traffic, at most one window more."""
        window = self.window_total
        if not window or self._stopping:
            return 0
        rate = self.policy.rate(time.monotonic())
        return max(1, min(window, math.ceil(rate)) + min(window, math.ceil(rate / 4)))

    def room(self) -> int:
        return max(0, self.target() - self.load)

    # --- session events -----------------------------------------------------------------------

    def session_bound(self, session: SmppSession) -> None:
        self._schedule_pump()
        if self.pool is not None:
            self.pool._room_changed()

    def session_down(self, session: SmppSession) -> None:
        if self._stopping or any(s.can_submit for s in self._tx):
            self._schedule_pump()
            return
        # every link is down: the jobs waiting here go to another carrier at once; if none can
        # take them they wait a moment (a link usually comes back in a second), then go back to
        # the outbox
        others = self.pool is not None and any(
            c.accepting for c in self.pool.carriers.values() if c is not self
        )
        if others:
            self._hand_over()
        elif self._down_timer is None:
            self._down_timer = asyncio.get_running_loop().call_later(self.down_grace, self._down_grace_over)

    def _down_grace_over(self) -> None:
        self._down_timer = None
        if not self._stopping and not any(s.can_submit for s in self._tx):
            self._hand_over()

    def _hand_over(self) -> None:
        for job in [job for job in self.queue if job.untouched]:
            self.queue.remove(job)
            job.queued = False
            if self.pool is None:
                self._finish(job, RELEASE, LINK_LOST, f"{self.name}: no bound link")
                continue
            self.load -= 1
            job.tried.append((self.name, LINK_LOST))
            self.pool._route(job, LINK_LOST)

    def window_freed(self, session: SmppSession) -> None:
        if self.queue and self._pump_handle is None:
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)

    def unusable_message_id(self, session: SmppSession, raw: bytes) -> None:
        self.bad_message_ids += 1
        if self.bad_message_ids == 1:  # once per carrier: /metrics counts the others
            log.warning(
                "smsc answered submit_sm with an unusable message id; such submits fail on this carrier",
                carrier=self.name,
                session=session.label,
                message_id=describe(raw),
            )

    # --- jobs ---------------------------------------------------------------------------------

    def enqueue(self, job: Job) -> None:
        """Take a job: split its text for this carrier and queue it."""
        self._prepare(job)
        job.carrier = self
        job.route.append(self.name)
        self.load += 1
        job.queued = True
        if job.priority == 0 and self.queue and self.queue[-1].priority != 0:
            # emergency: after the other emergencies, before everything else not yet on the wire
            at = next(
                (i for i, j in enumerate(self.queue) if j.priority != 0 and j.untouched), len(self.queue)
            )
            self.queue.insert(at, job)
        else:
            self.queue.append(job)
        self._schedule_pump()

    def _prepare(self, job: Job) -> None:
        encoded = _encoded(job.text, self.concat)
        destination = job.msisdn.lstrip("+")
        if encoded.segments > 1 and self.concat is not ConcatMethod.PAYLOAD:
            parts = split(encoded, self.concat, self.references.next(destination))
        else:
            parts = split(encoded, self.concat, 0)
        job._reset_parts()
        fields = self._fields
        data_coding = encoded.data_coding
        bodies = []
        for part in parts:
            bodies.append(
                codec.encode_body(
                    _SUBMIT_SM,
                    {
                        **fields,
                        "destination_addr": destination,
                        "esm_class": part.esm_class,
                        "data_coding": data_coding,
                        "short_message": part.short_message,
                    },
                    part.tlvs or None,
                )
            )
        job.bodies = bodies
        job.costs = [1] * len(parts) if len(parts) > 1 else [encoded.segments]
        job.smsc_ids = [None] * len(parts)
        job.unsent = list(range(len(parts)))
        job.encoding = encoded.encoding
        job.segments = encoded.segments

    def _schedule_pump(self) -> None:
        if self._pump_handle is None:
            with contextlib.suppress(RuntimeError):  # no running loop (unit tests)
                self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)

    def _wake_at(self, when: float) -> None:
        """Pump again at monotonic ``when`` (one timer; the earliest wins)."""
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = when
        self._timer = loop.call_at(loop.time() + max(0.0, when - time.monotonic()), self._timer_pump)

    def _timer_pump(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._pump()

    def _pick(self) -> SmppSession | None:
        tx = self._tx
        n = len(tx)
        for k in range(n):
            session = tx[(self._rr + k) % n]
            if session.free_window > 0:
                self._rr = (self._rr + k + 1) % n
                return session
        return None

    def _pump(self) -> None:
        """Send what the windows and the speed limit allow now."""
        self._pump_handle = None
        queue = self.queue
        if not queue:
            return
        now = time.monotonic()
        limiter = self.limiter
        sent = 0
        while queue:
            job = queue[0]
            if job.failure is not None or not job.unsent:
                queue.popleft()
                job.queued = False
                self._settle(job)
                continue
            if job.untouched:
                if self._stopping:
                    queue.popleft()
                    job.queued = False
                    self._finish(job, RELEASE, None, "shutting down")
                    continue
                if now >= job.expires_at:
                    queue.popleft()
                    job.queued = False
                    self._finish(job, EXPIRED, None, "validity ended before submission")
                    continue
                if now >= job.release_at:
                    queue.popleft()
                    job.queued = False
                    self._finish(job, RELEASE, None, "lease ending before submission")
                    continue
            session = self._pick()
            if session is None:
                break  # woken when a window frees or a bind comes up
            index = job.unsent[0]
            wait = limiter.take(job.costs[index], now)
            if wait > 0:
                self._wake_at(now + wait)
                break
            del job.unsent[0]
            job.outstanding += 1
            session.send_body(_SUBMIT_SM, job.bodies[index], PartSend(self, job, index, limiter.epoch), now)
            sent += 1
            if not job.unsent:
                queue.popleft()
                job.queued = False
        if sent:
            self.parts_sent += sent
            sec = int(now)
            rw = self._rate_window
            if rw and rw[-1][0] == sec:
                rw[-1] = (sec, rw[-1][1] + sent)
            else:
                rw.append((sec, sent))

    def _answered(self, entry: PartSend, status: int, message_id: str) -> None:
        job = entry.job
        index = entry.index
        job.outstanding -= 1
        if status == 0:
            job.smsc_ids[index] = message_id
            job.accepted += 1
            self.parts_accepted += 1
        else:
            self.errors[status] += 1
            kind = classify(status, self.failover_on)
            if kind is ErrorClass.THROTTLE:
                self.throttles += 1
                now = time.monotonic()
                if self.limiter.on_throttle(now, entry.epoch):
                    log.info(
                        "smsc throttling; rate lowered",
                        carrier=self.name,
                        status=error_name(status),
                        rate=round(self.policy.rate(now + self.policy.pause_seconds), 1),
                        pause=self.policy.pause_seconds,
                    )
                self._resend(job, index)
            elif kind is ErrorClass.LINK and job.link_tries < LINK_RETRIES and not self._stopping:
                job.link_tries += 1
                self._resend(job, index)
            elif job.failure is None:
                job.failure = (status, kind)
        self._settle(job)

    def _resend(self, job: Job, index: int) -> None:
        if job.failure is not None:
            return
        job.unsent.append(index)
        job.unsent.sort()
        if not job.queued:
            job.queued = True
            self.queue.appendleft(job)
        self._schedule_pump()

    def _settle(self, job: Job) -> None:
        """Decide a job once nothing of it is in flight."""
        if job.outstanding or job.queued:
            return
        if job.failure is None:
            if job.accepted == job.total:
                self.messages_submitted += 1
                self._finish(job, SUBMITTED)
            elif self._stopping:  # parts not sent at shutdown
                self._give_up_partial(job, LINK_LOST)
            return
        status, kind = job.failure
        if job.accepted == 0:
            if kind in (ErrorClass.ROUTING, ErrorClass.CARRIER) and self.pool is not None:
                self.load -= 1
                self.failovers_out += 1
                job.tried.append((self.name, status))
                self.pool._route(job, status)
            elif kind in TEMPORARY_CLASSES:
                self._finish(job, RETRY, status)
            else:
                self._finish(job, FAILED, status)
            return
        # some parts are at the SMSC already: resend only the missing ones, from memory
        if kind in TEMPORARY_CLASSES and job.partial_tries < PARTIAL_RETRIES:
            delay = PARTIAL_BACKOFF[job.partial_tries]
            job.partial_tries += 1
            job.failure = None
            job.unsent = [i for i, sid in enumerate(job.smsc_ids) if sid is None]
            job.queued = True  # held by the timer
            self._held[job] = asyncio.get_running_loop().call_later(delay, self._resume_held, job)
            return
        self._give_up_partial(job, status)

    def _resume_held(self, job: Job) -> None:
        if self._held.pop(job, None) is None:
            return
        if self._stopping:
            job.queued = False
            self._give_up_partial(job, LINK_LOST)
            return
        self.queue.appendleft(job)
        self._schedule_pump()

    def _give_up_partial(self, job: Job, status: int) -> None:
        """A long message some of whose parts the SMSC never accepted. A permanent error fails it;
        anything temporary (shutdown, a link that keeps failing) sends it whole again later, so the
        citizen gets it (the parts already accepted are paid twice, the handset never completes
        them)."""
        missing = sum(1 for sid in job.smsc_ids if sid is None)
        kind = classify(status, self.failover_on)
        temporary = kind is ErrorClass.THROTTLE or kind in TEMPORARY_CLASSES
        self._finish(
            job,
            RETRY if temporary else FAILED,
            status,
            f"{error_name(status)}: {missing} of {job.total} parts not accepted",
        )

    def _release_queue(self, reason: str) -> None:
        for job in [j for j in self.queue if j.untouched]:
            self.queue.remove(job)
            job.queued = False
            self._finish(job, RELEASE, None, reason)

    def _finish(self, job: Job, kind: str, status: int | None = None, error: str | None = None) -> None:
        self.load -= 1
        route = " > ".join(job.route)
        if job.tried:
            route += " (after " + ", ".join(f"{c}: {error_name(s)}" for c, s in job.tried) + ")"
        outcome = SendOutcome(
            kind,
            self.name,
            [sid or "" for sid in job.smsc_ids] if kind == SUBMITTED else [],
            status,
            error or (error_name(status) if status is not None else None),
            job.encoding,
            job.segments,
            route,
        )
        job.carrier = None
        try:
            job.done(job, outcome)
        except Exception:
            log.exception("outcome handler failed", carrier=self.name)
        if self.pool is not None:
            self.pool._room_changed()

    # --- numbers ------------------------------------------------------------------------------

    def submit_rate(self, now: float | None = None) -> float:
        """Parts sent per second over the last ten whole seconds."""
        sec = int(time.monotonic() if now is None else now)
        return sum(count for s, count in self._rate_window if sec - 10 <= s < sec) / 10.0


class CarrierPool:
    def __init__(
        self,
        carrier_settings: list,
        source_addr: str,
        on_deliver: DeliverCallback,
        routing=None,
    ):
        self.carriers = {c.name: Carrier(c, source_addr, on_deliver, self) for c in carrier_settings}
        names = list(self.carriers)
        if routing is None:
            self.router = Router(names)
        else:
            self.router = Router(
                names,
                prefixes=[(r.prefix, r.carrier) for r in routing.prefixes],
                weights=routing.weights,
                ported_path=routing.ported_numbers,
                failover=routing.failover,
            )
        self._reload_seconds = getattr(routing, "ported_reload_seconds", 60.0) if routing else 60.0
        self.wake: Callable[[], None] = lambda: None  # the dispatcher: room to claim more
        self._wake_handle: asyncio.Handle | None = None
        self._reload_task: asyncio.Task | None = None

    def start(self) -> None:
        for carrier in self.carriers.values():
            carrier.start()
        if self.router.ported_path is not None:
            self._reload_task = asyncio.create_task(self._reload_loop(), name="ported-reload")

    async def stop(self, timeout: float = 5.0) -> None:
        if self._reload_task is not None:
            self._reload_task.cancel()
        await asyncio.gather(*(c.stop(timeout) for c in self.carriers.values()))

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self._reload_seconds)
            self.router.reload_if_changed()

    @property
    def any_bound(self) -> bool:
        return any(c.is_bound for c in self.carriers.values())

    @property
    def in_memory(self) -> int:
        return sum(c.load for c in self.carriers.values())

    def capacity(self) -> int:
        """Messages worth claiming now: room in the queues of carriers that can take traffic.

        Also bounded by the pool's total (targets less loads): when routing sends most numbers to
        one carrier, the idle carrier's room must not keep the busy one's queue growing.
        """
        accepting = [c for c in self.carriers.values() if c.accepting]
        room = sum(c.room() for c in accepting)
        return max(0, min(room, sum(c.target() - c.load for c in accepting)))

    def target(self) -> int:
        return sum(c.target() for c in self.carriers.values() if c.accepting)

    def submit(self, job: Job) -> None:
        """Route a job to its carrier (the outcome comes through ``job.done``)."""
        job.tried = []
        job.route = []
        self._route(job, None)

    def _route(self, job: Job, last_status: int | None) -> None:
        tried = {name for name, _ in job.tried}
        for name in self.router.candidates(job.msisdn):
            if name in tried:
                continue
            carrier = self.carriers[name]
            if carrier.accepting:
                carrier.enqueue(job)
                return
        status = last_status if last_status is not None else NO_ROUTE
        if any(classify(s) is ErrorClass.CARRIER for _, s in job.tried):
            kind = RETRY  # a carrier took it but answered an unusable id: a real attempt, later again
        elif last_status is not None and last_status not in (LINK_LOST, NO_ROUTE):
            kind = FAILED  # every carrier answered a routing error
        elif job.link_tries:
            kind = RETRY  # it was on a link that died: a real attempt (the SMSC may have it)
        else:
            kind = RELEASE  # never sent: back to the outbox, no attempt counted
        route = " > ".join(job.route)
        if job.tried:
            route += " (after " + ", ".join(f"{c}: {error_name(s)}" for c, s in job.tried) + ")"
        outcome = SendOutcome(
            kind,
            job.tried[-1][0] if job.tried else None,
            [],
            status,
            error_name(status) if kind != RELEASE else "no carrier with a bound link",
            job.encoding or None,
            job.segments or None,
            route or None,
        )
        try:
            job.done(job, outcome)
        except Exception:
            log.exception("outcome handler failed")
        self._room_changed()

    def _room_changed(self) -> None:
        if self._wake_handle is None:
            with contextlib.suppress(RuntimeError):
                self._wake_handle = asyncio.get_running_loop().call_soon(self._maybe_wake)

    def _maybe_wake(self) -> None:
        self._wake_handle = None
        room = self.capacity()
        if room and (room * 4 >= self.target() or self.in_memory == 0):
            self.wake()

    async def wait_bound(self, timeout: float) -> bool:
        waiters = [asyncio.ensure_future(s.bound.wait()) for c in self.carriers.values() for s in c.sessions]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return self.any_bound

    def status(self) -> list[dict]:
        """A snapshot of every carrier and bind (for /metrics and the dashboard)."""
        now = time.monotonic()
        out = []
        for c in self.carriers.values():
            out.append(
                {
                    "carrier": c.name,
                    "rate_limit": c.settings.tps,
                    "rate": c.policy.rate(now),
                    "paused": c.policy.paused(now),
                    "throttles": c.throttles,
                    "rate_decreases": c.policy.decreases,
                    "parts_sent": c.parts_sent,
                    "parts_accepted": c.parts_accepted,
                    "messages_submitted": c.messages_submitted,
                    "submit_rate": c.submit_rate(now),
                    "errors": dict(c.errors),
                    "queued": len(c.queue),
                    "in_memory": c.load,
                    "failovers": c.failovers_out,
                    "bad_message_ids": c.bad_message_ids,
                    "binds": [
                        {
                            "bind": s.label,
                            "kind": s.kind,
                            "state": s.state,
                            "bound": s.is_bound,
                            "window": s.window,
                            "in_flight": s.in_flight,
                            "submits": s.submits,
                            "responses": s.responses,
                            "timeouts": s.timeouts,
                            "binds": s.binds,
                            "bind_failures": s.bind_failures,
                            "links_lost": s.links_lost,
                            "bad_pdus": s.bad_pdus,
                            "deliver_sm": s.deliver_sm,
                            "data_sm": s.data_sm,
                            "unexpected": dict(s.unexpected),
                        }
                        for s in c.sessions
                    ],
                }
            )
        return out


__all__ = [
    "EXPIRED",
    "FAILED",
    "RELEASE",
    "RETRY",
    "SUBMITTED",
    "Carrier",
    "CarrierPool",
    "Job",
    "SendOutcome",
]
