"""What each event type needs, who it goes to and how urgent it is (the table of docs/api.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .status import Priority

TOPICS = ("AGUA", "VIAL", "EMERGENCIA", "AVISOS")


@dataclass(frozen=True, slots=True)
class EventKind:
    type: str
    required: tuple[str, ...]
    priority: Priority
    audience: Literal["case_citizen", "subscribers"]
    topic: str | None = None
    zones_optional: bool = False  # only emergencies may go to every zone


_CASE = ("case.folio", "citizen.msisdn")

EVENT_KINDS: dict[str, EventKind] = {
    kind.type: kind
    for kind in (
        EventKind("case.received", _CASE, Priority.NORMAL, "case_citizen"),
        EventKind("case.status_changed", (*_CASE, "case.status"), Priority.NORMAL, "case_citizen"),
        EventKind("case.resolved", _CASE, Priority.NORMAL, "case_citizen"),
        EventKind("case.closed", _CASE, Priority.NORMAL, "case_citizen"),
        EventKind("appointment.scheduled", (*_CASE, "case.appointment.at"), Priority.HIGH, "case_citizen"),
        EventKind("appointment.cancelled", _CASE, Priority.HIGH, "case_citizen"),
        EventKind("service.confirmed", _CASE, Priority.NORMAL, "case_citizen"),
        EventKind(
            "water.outage",
            ("area.zones", "notice.starts_at", "notice.ends_at"),
            Priority.HIGH,
            "subscribers",
            topic="AGUA",
        ),
        EventKind(
            "traffic.alert", ("area.zones", "notice.text"), Priority.NORMAL, "subscribers", topic="VIAL"
        ),
        EventKind(
            "emergency.alert",
            ("notice.text",),
            Priority.EMERGENCY,
            "subscribers",
            topic="EMERGENCIA",
            zones_optional=True,
        ),
        EventKind("notice", ("area.zones", "notice.text"), Priority.LOW, "subscribers", topic="AVISOS"),
    )
}

REQUIRED_FIELDS = {kind.type: kind.required for kind in EVENT_KINDS.values()}

# Event types that are messages to one citizen about their case (the enrolment line may follow).
CASE_TYPES = frozenset(k.type for k in EVENT_KINDS.values() if k.audience == "case_citizen")
BROADCAST_TYPES = frozenset(k.type for k in EVENT_KINDS.values() if k.audience == "subscribers")
