"""When a message may go and until when it is worth sending: quiet hours and validity.

Pure functions over naive UTC datetimes (as stored); the city's time zone decides the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .status import MessageStatus, Priority


def _aware_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_naive_utc(moment: datetime) -> datetime:
    return _aware_utc(moment).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A nightly window (default 22:00-07:00 city time) in which only emergencies are sent."""

    start: time = time(22, 0)
    end: time = time(7, 0)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/Mexico_City"))
    enabled: bool = True

    @classmethod
    def off(cls) -> QuietHours:
        return cls(enabled=False)

    def window(self, moment: datetime) -> tuple[datetime, datetime] | None:
        """The window holding ``moment`` as (start, end) in naive UTC, or None outside one."""
        if not self.enabled or self.start == self.end:
            return None
        local = _aware_utc(moment).astimezone(self.tz)
        today = local.date()
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            if not self.start <= t < self.end:
                return None
            first, last = today, today
        elif t >= self.start:
            first, last = today, today + timedelta(days=1)
        elif t < self.end:
            first, last = today - timedelta(days=1), today
        else:
            return None
        begin = datetime.combine(first, self.start, tzinfo=self.tz)
        finish = datetime.combine(last, self.end, tzinfo=self.tz)
        return to_naive_utc(begin), to_naive_utc(finish)

    def release_at(self, moment: datetime) -> datetime | None:
        """The end of the window holding ``moment`` (naive UTC), or None when it may go now."""
        window = self.window(moment)
        return window[1] if window else None

    def reminder_time(self, moment: datetime, deadline: datetime, now: datetime) -> datetime | None:
        """Where a reminder due at ``moment`` goes so it is not sent at night.

        Inside the window it moves to the window's end when that is still at least 30 minutes
        before ``deadline`` (the appointment), else to just before the window starts (the
        evening before); None when that is already past (the reminder is skipped).
        """
        window = self.window(moment)
        if window is None:
            return moment
        begin, finish = window
        if finish <= deadline - timedelta(minutes=30):
            return finish
        earlier = begin - timedelta(minutes=1)
        return earlier if earlier > now else None


DEFAULT_VALIDITY = {
    Priority.EMERGENCY: timedelta(hours=6),
    Priority.HIGH: timedelta(hours=12),
    Priority.NORMAL: timedelta(hours=24),
    Priority.LOW: timedelta(hours=48),
}
DEFAULT_TYPE_VALIDITY = {"traffic.alert": timedelta(hours=2)}


@dataclass(frozen=True, slots=True)
class ValidityPolicy:
    """How long a message may wait for submission, by priority, or by event type where set."""

    by_priority: Mapping[Priority, timedelta] = field(default_factory=lambda: dict(DEFAULT_VALIDITY))
    by_type: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_TYPE_VALIDITY))

    def validity(self, priority: Priority, event_type: str | None = None) -> timedelta:
        if event_type is not None and event_type in self.by_type:
            return self.by_type[event_type]
        return self.by_priority[priority]


@dataclass(frozen=True, slots=True)
class Timing:
    status: MessageStatus  # queued, or held until the end of quiet hours
    not_before: datetime
    expires_at: datetime


def plan_timing(
    now: datetime,
    priority: Priority,
    event_type: str | None,
    quiet: QuietHours,
    validity: ValidityPolicy,
    useless_after: datetime | None = None,
) -> Timing:
    """Emergencies go now; others wait for the end of quiet hours (status ``held``).

    Validity runs from the moment the message may first go, so a night's hold does not eat it; it
    never runs past ``useless_after`` (a notice's end, an appointment), so nothing is sent late.
    """
    release = None if priority == Priority.EMERGENCY else quiet.release_at(now)
    not_before = release or now
    expires_at = not_before + validity.validity(priority, event_type)
    if useless_after is not None:
        expires_at = min(expires_at, to_naive_utc(useless_after))
    status = MessageStatus.HELD if release else MessageStatus.QUEUED
    return Timing(status, not_before, expires_at)
