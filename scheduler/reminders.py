"""Appointment reminders: APScheduler jobs in a persistent job store (they survive a restart).

``appointment.scheduled`` schedules two date jobs, 24 h and 2 h before the appointment (moved out
of quiet hours: to the window's end when that is still 30 minutes ahead of the appointment, else
to just before the window starts); ``appointment.cancelled`` removes them. The jobs live in
APScheduler 3's SQLAlchemyJobStore on the gateway's own database (table ``apscheduler_jobs``,
created by the migrations). A job names only the appointment and the reminder ("24h" or "2h"):
when it fires, the appointment is read again and the reminder is sent only if the appointment is
still pending or confirmed, still ahead, and that reminder was not sent yet (so a job that runs
twice, or late after downtime, never sends twice or after the appointment).

Only one process per database should run reminders (``[notices] reminders = true``): APScheduler 3
job stores are not shared between schedulers. Appointments accepted by another process (``smsgw
events import``) get their jobs from :meth:`ReminderService.reconcile`, which runs at start and
every ``reconcile_seconds``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway import clock
from gateway.domain.notices import REMINDER_LEADS, NoticePolicy
from gateway.domain.status import Priority
from gateway.store import appointments, outbox
from gateway.store.db import Database, make_engine
from gateway.store.intake import ReminderOp

log = structlog.get_logger("scheduler")

JOBSTORE = "reminders"
_current: ReminderService | None = None  # the running service; jobs are plain references to fire()


def job_id(appointment_id: int, label: str) -> str:
    return f"appointment-{appointment_id}-{label}"


async def fire(appointment_id: int, label: str) -> None:
    """The job function (module level, so the persistent store can reference it)."""
    service = _current
    if service is None:
        log.warning("reminder fired with no reminder service running", appointment_id=appointment_id)
        return
    await service.send(appointment_id, label)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _send_reminder(conn, appointment_id: int, label: str, policy: NoticePolicy, now: datetime) -> int | None:
    row = appointments.claim_reminder(conn, appointment_id, label, now)
    if row is None:
        return None
    text = policy.reminder_text(row["folio"], row["at"], row["place"], row["language"])
    timing = policy.timing(now, Priority.HIGH, "appointment.reminder", row["at"])
    (message_id,) = outbox.enqueue(
        conn,
        [
            {
                "event_id": row["event_id"],
                "citizen_id": row["citizen_id"],
                "msisdn": row["msisdn"],
                "language": row["language"],
                "body": text.body,
                "encoding": text.encoding,
                "segments": text.segments,
                "priority": int(Priority.HIGH),
                "status": timing.status.value,
                "not_before": timing.not_before,
                "expires_at": timing.expires_at,
            }
        ],
        now,
    )
    return message_id


class ReminderService:
    def __init__(
        self,
        db: Database,
        policy: NoticePolicy,
        on_queued: Callable[[], None] = lambda: None,
        now: Callable[[], datetime] | None = None,
        reconcile_seconds: float = 60.0,
    ):
        self.db = db
        self.policy = policy
        self.on_queued = on_queued
        self.now = now or (lambda: clock.utcnow())
        self.reconcile_seconds = reconcile_seconds
        self._engine = make_engine(db.url)
        self.scheduler = AsyncIOScheduler(
            timezone="UTC",
            jobstores={JOBSTORE: SQLAlchemyJobStore(engine=self._engine, tablename="apscheduler_jobs")},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )

    async def start(self, paused: bool = False) -> None:
        """``paused``: jobs are kept and listed but only run_due() runs them (a controlled clock)."""
        global _current
        _current = self
        self.scheduler.start(paused=paused)
        await self.reconcile()
        self.scheduler.add_job(
            self._reconcile_job,
            "interval",
            seconds=self.reconcile_seconds,
            id="reminders-reconcile",
            jobstore="default",  # in memory: the persistent store holds only reminders
            replace_existing=True,
        )

    def shutdown(self) -> None:
        global _current
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if _current is self:
            _current = None
        self._engine.dispose()

    # --- scheduling (job store writes run on the database thread, after the event's commit) ------

    def _apply(self, _conn, ops: list[ReminderOp]) -> None:
        for op in ops:
            for label, _ in REMINDER_LEADS:
                if op.action == "remove" or label not in dict(op.times):
                    try:
                        self.scheduler.remove_job(job_id(op.appointment_id, label), JOBSTORE)
                    except JobLookupError:
                        pass
            if op.action == "schedule":
                self._add_jobs(op)

    def _add_jobs(self, op: ReminderOp) -> None:
        for label, when in op.times:
            self.scheduler.add_job(
                fire,
                "date",
                run_date=_aware(when),
                args=[op.appointment_id, label],
                id=job_id(op.appointment_id, label),
                jobstore=JOBSTORE,
                replace_existing=True,
            )

    async def apply(self, ops: list[ReminderOp]) -> None:
        if ops:
            await self.db.run(self._apply, ops)

    def jobs(self) -> list:
        return self.scheduler.get_jobs(JOBSTORE)

    async def reconcile(self) -> int:
        """Schedule reminders missing from the job store (an event committed just before a crash)."""
        now = self.now()
        active = await self.db.run(appointments.active)
        known = {job.id for job in self.jobs()}
        ops = []
        for row in active:
            sent = {"24h": row["reminded_24h_at"], "2h": row["reminded_2h_at"]}
            times = [
                (label, when)
                for label, when in self.policy.reminder_times(row["at"], now)
                if sent[label] is None and job_id(row["id"], label) not in known
            ]
            if times:
                ops.append(ReminderOp("schedule", row["id"], times))
        if ops:
            # add only the missing ones: "schedule" with a subset would remove the others
            await self.db.run(self._add_missing, ops)
            log.info("reminders missing from the job store scheduled", appointments=len(ops))
        return len(ops)

    async def _reconcile_job(self) -> None:
        try:
            await self.reconcile()
        except Exception:
            log.exception("reminder reconciliation failed")

    def _add_missing(self, _conn, ops: list[ReminderOp]) -> None:
        for op in ops:
            self._add_jobs(op)

    # --- firing ----------------------------------------------------------------------------------

    async def send(self, appointment_id: int, label: str) -> int | None:
        now = self.now()
        message_id = await self.db.run(_send_reminder, appointment_id, label, self.policy, now)
        if message_id is not None:
            log.info("appointment reminder queued", appointment_id=appointment_id, reminder=label)
            self.on_queued()
        return message_id

    async def run_due(self, now: datetime | None = None) -> int:
        """Run every job due at ``now`` (the gateway clock) and drop it from the store, as the
        scheduler would at that time; returns how many ran. Used under a controlled clock."""
        moment = _aware(now or self.now())
        store = self.scheduler._lookup_jobstore(JOBSTORE)
        due = await self.db.run(lambda _conn: store.get_due_jobs(moment))
        for job in due:
            await job.func(*job.args, **job.kwargs)
            await self.db.run(lambda _conn, job_id=job.id: store.remove_job(job_id))
        return len(due)
