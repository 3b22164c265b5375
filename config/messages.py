"""What is sent and when: ``[quiet_hours]``, ``[validity]``, ``[templates]``, ``[notices]`` and
``[replies]`` (the answers to citizens' SMS and their loop guard)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .base import Section


def _hh_mm(value: str) -> str:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
    if not m:
        raise ValueError(f"expected a time of day HH:MM such as 22:00, got {value!r}")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


class QuietHoursSettings(Section):
    enabled: bool = True
    start: str = "22:00"  # city time; only emergencies are sent from start to end
    end: str = "07:00"

    @field_validator("start", "end")
    @classmethod
    def _check_time(cls, v: str) -> str:
        return _hh_mm(v)


class ValiditySettings(Section):
    """Hours a message may wait to be submitted before it expires, by priority; by_type wins."""

    emergency_hours: float = Field(6, gt=0)
    high_hours: float = Field(12, gt=0)
    normal_hours: float | None = Field(None, gt=0)  # default: dispatch.validity_hours
    low_hours: float = Field(48, gt=0)
    by_type: dict[str, float] = Field(default_factory=lambda: {"traffic.alert": 2.0})


class TemplatesSettings(Section):
    directory: str | None = None  # default: config/templates beside this file
    max_segments: int = Field(3, ge=1, le=10)  # templates that can render longer are refused at start-up


class NoticesSettings(Section):
    enrolment: bool = True  # offer the alerts on the first message of a citizen's first case
    zones_file: str | None = None  # default: config/zones/miguel_hidalgo.csv
    # emergency.alert without zones: "subscribers" (every EMERGENCIA subscriber, any zone) or
    # "citizens" (every citizen known to the gateway who has not opted out)
    emergency_without_zones: Literal["subscribers", "citizens"] = "subscribers"
    fanout_chunk: int = Field(5000, ge=100, le=100_000)
    reminders: bool = True  # appointment reminders (claimed in the database: sent once by any process)


class RepliesSettings(Section):
    city_phone: str = Field("55 5658 1111", pattern=r"^[0-9 +()*#.-]{3,20}$")  # in AYUDA, "not found"
    privacy_url: str = Field("", max_length=60)  # simplified privacy notice, named when subscribing
    max_per_day: int = Field(10, ge=1, le=1000)  # replies to one number in 24 hours, at most
    help_interval_minutes: float = Field(60, gt=0)  # unknown texts get the help text once per this
    duplicate_window_seconds: float = Field(120, ge=0)  # the same text again within this: a resend
