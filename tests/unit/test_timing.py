"""Quiet hours, reminder placement and validity (pure functions, naive UTC in and out)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.status import MessageStatus, Priority
from gateway.domain.timing import QuietHours, ValidityPolicy, plan_timing

CITY = ZoneInfo("America/Mexico_City")  # UTC-6, no DST since 2022
QUIET = QuietHours(time(22, 0), time(7, 0), CITY)


def utc(local: str) -> datetime:
    """City time 'YYYY-MM-DD HH:MM' -> naive UTC."""
    return datetime.fromisoformat(local).replace(tzinfo=CITY).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("local", "release"),
    [
        ("2026-12-01 21:59", None),
        ("2026-12-01 22:00", "2026-12-02 07:00"),
        ("2026-12-01 23:30", "2026-12-02 07:00"),
        ("2026-12-02 00:10", "2026-12-02 07:00"),
        ("2026-12-02 06:59", "2026-12-02 07:00"),
        ("2026-12-02 07:00", None),
        ("2026-12-02 12:00", None),
    ],
)
def test_the_nightly_window_in_city_time(local, release):
    assert QUIET.release_at(utc(local)) == (utc(release) if release else None)


def test_a_window_within_one_day_and_an_empty_one():
    siesta = QuietHours(time(14, 0), time(16, 0), CITY)
    assert siesta.release_at(utc("2026-12-01 15:00")) == utc("2026-12-01 16:00")
    assert siesta.release_at(utc("2026-12-01 16:00")) is None
    assert QuietHours(time(7, 0), time(7, 0), CITY).release_at(utc("2026-12-01 07:00")) is None
    assert QuietHours.off().release_at(utc("2026-12-01 23:00")) is None


def test_non_emergencies_are_held_until_morning_emergencies_go_at_once():
    night = utc("2026-12-01 23:00")
    validity = ValidityPolicy()
    held = plan_timing(night, Priority.NORMAL, "case.received", QUIET, validity)
    assert held.status == MessageStatus.HELD
    assert held.not_before == utc("2026-12-02 07:00")
    assert held.expires_at == held.not_before + timedelta(hours=24)  # the hold does not eat validity
    urgent = plan_timing(night, Priority.EMERGENCY, "emergency.alert", QUIET, validity)
    assert (urgent.status, urgent.not_before, urgent.expires_at) == (
        MessageStatus.QUEUED,
        night,
        night + timedelta(hours=6),
    )
    day = plan_timing(utc("2026-12-02 10:00"), Priority.LOW, "notice", QUIET, validity)
    assert day.status == MessageStatus.QUEUED and day.expires_at - day.not_before == timedelta(hours=48)


def test_validity_by_priority_and_by_type():
    v = ValidityPolicy()
    assert v.validity(Priority.EMERGENCY) == timedelta(hours=6)
    assert v.validity(Priority.HIGH) == timedelta(hours=12)
    assert v.validity(Priority.NORMAL) == timedelta(hours=24)
    assert v.validity(Priority.LOW) == timedelta(hours=48)
    assert v.validity(Priority.NORMAL, "traffic.alert") == timedelta(hours=2)


def test_a_message_is_never_valid_past_the_end_of_what_it_announces():
    now = utc("2026-12-01 12:00")
    ends = utc("2026-12-01 13:00")
    timing = plan_timing(now, Priority.HIGH, "water.outage", QUIET, ValidityPolicy(), ends)
    assert timing.expires_at == ends
    # held overnight past the end: it expires at its release instead of going out late
    late = plan_timing(
        utc("2026-12-01 23:00"), Priority.NORMAL, "traffic.alert", QUIET, ValidityPolicy(), ends
    )
    assert late.expires_at <= late.not_before


@pytest.mark.parametrize(
    ("due", "appointment", "expected"),
    [
        ("2026-12-02 10:30", "2026-12-03 10:30", "2026-12-02 10:30"),  # outside the window
        ("2026-12-03 06:00", "2026-12-03 08:00", "2026-12-03 07:00"),  # later, still an hour ahead
        ("2026-12-03 05:00", "2026-12-03 07:15", "2026-12-02 21:59"),  # 07:00 too close: the evening before
        ("2026-12-02 23:00", "2026-12-03 23:00", "2026-12-03 07:00"),
    ],
)
def test_reminders_are_moved_out_of_quiet_hours(due, appointment, expected):
    now = utc("2026-12-01 12:00")
    assert QUIET.reminder_time(utc(due), utc(appointment), now) == utc(expected)


def test_a_reminder_with_nowhere_to_go_is_skipped():
    now = utc("2026-12-02 22:30")  # already inside the window the reminder falls in
    assert QUIET.reminder_time(utc("2026-12-03 05:00"), utc("2026-12-03 07:15"), now) is None
