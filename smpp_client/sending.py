"""A carrier's queue of jobs and its pump: parts go out as the windows and the speed limit allow,
and each answer decides what becomes of its job (see :mod:`smpp_client.carrier` for the rules).

The pump is a plain callback, run when something changes (a job queued, a window slot freed, a
bind up, the limiter allowing the next segment); a limiter that says "wait" sets one timer. No
task or future per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter, deque
from typing import TYPE_CHECKING

import structlog

from .constants import Cmd
from .errors import LINK_LOST, TEMPORARY_CLASSES, ErrorClass, classify, error_name
from .jobs import DEADLINE, FAILED, RELEASE, RETRY, SUBMITTED, Job, SendOutcome
from .policies.rate import RateLimiter
from .policies.throttle import ThrottlePolicy
from .session import SmppSession
from .submit_parts import EncodedParts
from .window import Pending

if TYPE_CHECKING:
    from .carrier import CarrierOwner

log = structlog.get_logger("smpp_client")
PUMP_TICK_SECONDS = 0.02  # a speed-limited carrier sends at most every this often

_SUBMIT_SM = int(Cmd.SUBMIT_SM)
LINK_RETRIES = 2  # resends from memory after a lost link or a timeout, before giving up
PARTIAL_RETRIES = 5  # resends of the missing parts of a partly accepted message
PARTIAL_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)


class PartSend(Pending):
    """One submit_sm in a bind's window."""

    __slots__ = ("epoch", "index", "job", "sending")

    def __init__(self, sending: SendQueue, job: Job, index: int, epoch: int):
        self.sending = sending
        self.job = job
        self.index = index
        self.epoch = epoch

    def resolve(self, status: int, message_id: str, pdu) -> None:
        self.sending._answered(self, status, message_id)

    def fail(self, code: int) -> None:
        self.sending._answered(self, code, "")


class SendQueue:
    def __init__(
        self,
        name: str,
        sessions: list[SmppSession],
        limiter: RateLimiter,
        throttle: ThrottlePolicy,
        failover_on: frozenset[int],
        owner: CarrierOwner | None,
    ):
        self.name = name
        self.sessions = sessions  # the binds that can submit (transceivers or transmitters)
        self.limiter = limiter
        self.throttle = throttle
        self.failover_on = failover_on
        self.owner = owner
        self.queue: deque[Job] = deque()
        self.load = 0  # jobs in memory (queued, in a window, or waiting to resend)
        self.stopping = False
        self._rr = 0
        self._pump_handle: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._held: dict[Job, asyncio.TimerHandle] = {}  # partly accepted jobs waiting to resend
        # counters (metrics)
        self.parts_sent = 0
        self.parts_accepted = 0
        self.throttles = 0
        self.errors: Counter[int] = Counter()
        self.messages_submitted = 0
        self.failovers_out = 0
        self._rate_window: deque[tuple[int, int]] = deque(maxlen=12)

    def enqueue(self, job: Job, parts: EncodedParts) -> None:
        """Queue a job with this carrier's ``parts`` of its text, by rank (lower first)."""
        job.take_parts(parts)
        job.route.append(self.name)
        self.load += 1
        job.queued = True
        queue = self.queue
        if queue and queue[-1].rank > job.rank:
            # before everything of a higher rank not yet on the wire; after its equals
            at = next((i for i, j in enumerate(queue) if j.rank > job.rank and j.untouched), len(queue))
            queue.insert(at, job)
        else:
            queue.append(job)
        self.schedule_pump()

    def window_freed(self) -> None:
        if self.queue and self._pump_handle is None:
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)

    def schedule_pump(self) -> None:
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
        tx = self.sessions
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
        epoch = self.throttle.epoch
        sent = 0
        while queue:
            job = queue[0]
            if job.failure is not None or not job.unsent:
                queue.popleft()
                job.queued = False
                self._settle(job)
                continue
            if job.untouched:
                if self.stopping:
                    queue.popleft()
                    job.queued = False
                    self._finish(job, RELEASE, None, "shutting down")
                    continue
                if now >= job.deadline:
                    queue.popleft()
                    job.queued = False
                    self._finish(job, DEADLINE, None, "deadline reached before submission")
                    continue
            session = self._pick()
            if session is None:
                break  # woken when a window frees or a bind comes up
            index = job.unsent[0]
            wait = limiter.take(job.costs[index], now)
            if wait > 0:
                # not before a tick: the tokens of a few messages go out together, one write and
                # one wake-up for them, not one each (the bucket still bounds every second's rate)
                self._wake_at(now + max(wait, PUMP_TICK_SECONDS))
                break
            del job.unsent[0]
            job.outstanding += 1
            session.send_body(_SUBMIT_SM, job.bodies[index], PartSend(self, job, index, epoch), now)
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

    # --- answers ------------------------------------------------------------------------------

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
                if self.throttle.on_throttle(now, entry.epoch):
                    log.info(
                        "smsc throttling; rate lowered",
                        carrier=self.name,
                        status=error_name(status),
                        rate=round(self.throttle.rate(max(now, self.throttle.paused_until)), 1),
                        pause=round(max(0.0, self.throttle.paused_until - now), 3),
                    )
                self._resend(job, index)
            elif kind is ErrorClass.LINK and job.link_tries < LINK_RETRIES and not self.stopping:
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
        self.schedule_pump()

    def _settle(self, job: Job) -> None:
        """Decide a job once nothing of it is in flight."""
        if job.outstanding or job.queued:
            return
        if job.failure is None:
            if job.accepted == job.total:
                self.messages_submitted += 1
                self._finish(job, SUBMITTED)
            elif self.stopping:  # parts not sent at shutdown
                self._give_up_partial(job, LINK_LOST)
            return
        status, kind = job.failure
        if job.accepted == 0:
            if kind in (ErrorClass.ROUTING, ErrorClass.CARRIER) and self.owner is not None:
                self.load -= 1
                self.failovers_out += 1
                job.tried.append((self.name, status))
                self.owner.hand_on(job, status)
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
        if self.stopping:
            job.queued = False
            self._give_up_partial(job, LINK_LOST)
            return
        self.queue.appendleft(job)
        self.schedule_pump()

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

    def release_untouched(self, reason: str) -> None:
        """Hand back every queued job nothing of which was sent."""
        for job in [j for j in self.queue if j.untouched]:
            self.queue.remove(job)
            job.queued = False
            self._finish(job, RELEASE, None, reason)

    def _finish(self, job: Job, kind: str, status: int | None = None, error: str | None = None) -> None:
        self.load -= 1
        outcome = SendOutcome(
            kind,
            self.name,
            [sid or "" for sid in job.smsc_ids] if kind == SUBMITTED else [],
            status,
            error or (error_name(status) if status is not None else None),
            job.encoding,
            job.segments,
            job.route_text(),
        )
        try:
            job.done(job, outcome)
        except Exception:
            log.exception("outcome handler failed", carrier=self.name)
        if self.owner is not None:
            self.owner.room_changed()

    def hand_over(self) -> None:
        """Every link is down: what nothing was sent of goes to the owner (another carrier)."""
        for job in [job for job in self.queue if job.untouched]:
            self.queue.remove(job)
            job.queued = False
            if self.owner is None:
                self._finish(job, RELEASE, LINK_LOST, f"{self.name}: no bound link")
                continue
            self.load -= 1
            job.tried.append((self.name, LINK_LOST))
            self.owner.hand_on(job, LINK_LOST)

    def begin_shutdown(self) -> None:
        """Send nothing new: what nothing was sent of is released now."""
        self.stopping = True
        self.release_untouched("shutting down")

    def finish_shutdown(self) -> None:
        """After the binds stopped: held resends and queued missing parts cannot go now."""
        for job, handle in list(self._held.items()):
            handle.cancel()
            self._resume_held(job)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.release_untouched("shutting down")
        for job in list(self.queue):  # partly sent messages whose missing parts cannot go now
            self.queue.remove(job)
            job.queued = False
            if not job.outstanding:
                self._give_up_partial(job, LINK_LOST)

    def submit_rate(self, now: float | None = None) -> float:
        """Parts sent per second over the last ten whole seconds."""
        sec = int(time.monotonic() if now is None else now)
        return sum(count for s, count in self._rate_window if sec - 10 <= s < sec) / 10.0
