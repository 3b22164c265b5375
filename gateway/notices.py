"""Wiring of the notice services (issue 5) into a running gateway.

Start-up order: :meth:`NoticeServices.prepare` checks every template against the maximum parts
(refusing to start otherwise) and syncs the zone catalogue into the database; :meth:`start` then
runs the intake batcher, the broadcast fan-out, the quiet-hours release job, the appointment
reminders and the status callbacks, and :meth:`configure` hands them to the HTTP API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import time, timedelta
from pathlib import Path

import structlog

from config.settings import Settings
from crm_adapters.callbacks import StatusCallbacks
from scheduler.fanout import FanoutService
from scheduler.quiet_hours import QuietHoursRelease
from scheduler.reminders import ReminderService

from . import clock
from .domain.composer import Composer
from .domain.notices import NoticePolicy
from .domain.preview import TemplateReport, check_templates
from .domain.status import Priority
from .domain.templates import DEFAULT_DIRECTORY, TemplateRenderer
from .domain.timing import QuietHours, ValidityPolicy
from .domain.zones import DEFAULT_ZONES_FILE, load_zones
from .store.db import Database
from .store.intake import IntakeBatcher, ReminderOp
from .store.zones import sync_zones

log = structlog.get_logger("gateway")


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _relative(settings: Settings, value: str | None) -> Path | None:
    """A path from the configuration: relative to the configuration file's folder."""
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and settings.source_path is not None:
        path = settings.source_path.parent / path
    return path


def template_directory(settings: Settings) -> Path:
    return _relative(settings, settings.templates.directory) or DEFAULT_DIRECTORY


def build_composer(settings: Settings) -> Composer:
    g = settings.gateway
    return Composer(TemplateRenderer(g.tz, g.short_code, template_directory(settings)), g.transliteration)


def build_policy(settings: Settings, composer: Composer | None = None) -> NoticePolicy:
    """Everything configured about notices (no database needed; zone ids come with prepare())."""
    v = settings.validity
    normal = v.normal_hours if v.normal_hours is not None else settings.dispatch.validity_hours
    validity = ValidityPolicy(
        {
            Priority.EMERGENCY: timedelta(hours=v.emergency_hours),
            Priority.HIGH: timedelta(hours=v.high_hours),
            Priority.NORMAL: timedelta(hours=normal),
            Priority.LOW: timedelta(hours=v.low_hours),
        },
        {name: timedelta(hours=hours) for name, hours in v.by_type.items()},
    )
    q = settings.quiet_hours
    quiet = QuietHours(_hhmm(q.start), _hhmm(q.end), settings.gateway.tz, q.enabled)
    zones = load_zones(_relative(settings, settings.notices.zones_file) or DEFAULT_ZONES_FILE)
    return NoticePolicy(
        composer or build_composer(settings),
        zones=zones,
        quiet=quiet,
        validity=validity,
        max_segments=settings.templates.max_segments,
        enrolment=settings.notices.enrolment,
        emergency_scope=settings.notices.emergency_without_zones,
    )


def check(settings: Settings, policy: NoticePolicy | None = None) -> list[TemplateReport]:
    """The start-up check of every template (raises TemplateTooLong)."""
    policy = policy or build_policy(settings)
    labels = [z.name for z in policy.zones.zones]
    return check_templates(policy.composer, policy.max_segments, labels)


class NoticeServices:
    def __init__(self, settings: Settings, db: Database, on_queued: Callable[[], None]):
        self.settings = settings
        self.db = db
        self.on_queued = on_queued
        self.policy = build_policy(settings)
        self.intake: IntakeBatcher | None = None
        self.fanout: FanoutService | None = None
        self.release: QuietHoursRelease | None = None
        self.reminders: ReminderService | None = None
        self.callbacks: StatusCallbacks | None = None

    @property
    def callback_targets(self) -> dict[str, str]:
        return {c.id: c.callback_url for c in self.settings.crm_clients if c.callback_url}

    async def prepare(self) -> None:
        """Refuse templates that can exceed the maximum parts; sync the zone catalogue."""
        check(self.settings, self.policy)
        self.policy.zone_ids = await self.db.run(sync_zones, self.policy.zones, clock.utcnow())

    async def start(self, scheduler, writer, expire_jobs=None) -> None:
        s = self.settings
        self.fanout = FanoutService(self.db, s.notices.fanout_chunk, on_queued=self.on_queued)
        self.fanout.start()
        self.release = QuietHoursRelease(self.db, on_released=self.on_queued)
        self.release.install(scheduler)
        if s.notices.reminders:
            self.reminders = ReminderService(self.db, self.policy, on_queued=self.on_queued)
            await self.reminders.start()
        self.callbacks = StatusCallbacks(
            self.db,
            self.callback_targets,
            {c.id: c.secret for c in s.crm_clients},
            timeout_seconds=s.callbacks.timeout_seconds,
            max_attempts=s.callbacks.max_attempts,
            backoff_seconds=s.callbacks.backoff_seconds,
            max_backoff_seconds=s.callbacks.max_backoff_seconds,
            concurrency=s.callbacks.concurrency,
        )
        if self.callbacks.enabled:
            previous = writer.on_change

            def on_change(changes, previous=previous, collector=self.callbacks) -> None:
                if previous is not None:
                    previous(changes)
                collector.on_change(changes)

            writer.on_change = on_change
            if expire_jobs is not None:
                expire_jobs.expire_hook = self.callbacks.status_hook
            self.callbacks.start()
        self.intake = IntakeBatcher(self.db, self.policy, lambda: clock.utcnow())

    def configure(self, ctx) -> None:
        ctx.policy = self.policy
        ctx.intake = self.intake
        ctx.on_broadcast = self.fanout.wake
        ctx.on_reminders = self.apply_reminders
        ctx.callback_targets = self.callback_targets

    async def apply_reminders(self, ops: list[ReminderOp]) -> None:
        """Schedule / remove reminder jobs after the event's commit (before its 202 is sent)."""
        if self.reminders is None or not ops:
            return
        try:
            await self.reminders.apply(ops)
        except Exception:  # the appointment is stored: the next start's reconcile() schedules it
            log.exception("could not schedule appointment reminders")

    async def seed_demo(self) -> int:
        """The demo's few subscribers in demo zones (`smsgw demo`); idempotent."""
        from .store.subscriptions import seed_demo

        added = await self.db.run(seed_demo, self.policy.zones, clock.utcnow())
        if added:
            log.info("demo subscribers seeded", subscriptions=added)
        return added

    async def stop(self) -> None:
        """Before the dispatcher drains: no more fan-out, reminders or callback POSTs."""
        if self.fanout is not None:
            await self.fanout.stop()
        if self.reminders is not None:
            self.reminders.shutdown()
        if self.callbacks is not None:
            await self.callbacks.stop()

    async def close(self) -> None:
        """After the status writer's last commit, before the database closes: the callbacks of
        the last status changes are written (and sent at the next start)."""
        if self.callbacks is not None:
            await self.callbacks.close()
