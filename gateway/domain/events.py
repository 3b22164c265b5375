"""The canonical case event (docs/api.md) and its validation.

Every inbound channel (webhook, Open311 poller, file import) produces an :class:`Event`. Validation
errors carry the dotted path of the field at fault ("citizen.msisdn").
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .languages import primary_subtag
from .phone import InvalidNumber, normalize_msisdn


class EventInvalid(ValueError):
    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


class _Model(BaseModel):
    # CRMs add fields of their own; unknown ones are ignored, known ones are strict.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Citizen(_Model):
    msisdn: str
    name: str | None = Field(default=None, max_length=120)
    language: str | None = Field(default=None, max_length=35)

    @field_validator("language")
    @classmethod
    def _primary_subtag(cls, value: str | None) -> str | None:
        """'es-MX' -> 'es'; NoticePolicy.prepare refuses a language without templates."""
        return primary_subtag(value) if value else None

    @field_validator("msisdn", mode="before")
    @classmethod
    def _normalize(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string with a Mexican phone number")
        try:
            return normalize_msisdn(value)
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from None


def _require_offset(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must include a time zone offset, e.g. 2026-11-29T10:00:00-06:00")
    return value


class Appointment(_Model):
    at: datetime
    place: str | None = Field(default=None, max_length=200)

    _aware = field_validator("at")(_require_offset)


class Case(_Model):
    folio: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    category: str | None = Field(default=None, max_length=120)
    status: str | None = Field(default=None, max_length=120)
    progress: int | None = Field(default=None, ge=0, le=100)
    resolution_date: date | None = None
    appointment: Appointment | None = None


class Area(_Model):
    zones: list[str] = Field(default_factory=list, max_length=200)


class Notice(_Model):
    text: str | None = Field(default=None, max_length=1000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    _aware = field_validator("starts_at", "ends_at")(_require_offset)


class Event(_Model):
    id: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=64)
    occurred_at: datetime | None = None
    priority: Literal["emergency", "high", "normal", "low"] | None = None
    case: Case | None = None
    citizen: Citizen | None = None
    area: Area | None = None
    notice: Notice | None = None

    _aware = field_validator("occurred_at")(_require_offset)


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_event(
    data: object,
    required: dict[str, tuple[str, ...]],
    emergency_types: frozenset[str] = frozenset({"emergency.alert"}),
) -> Event:
    """Validate a decoded JSON body; ``required`` maps each supported type to its required paths.

    A CRM may lower or raise an event's priority, but only emergencies may claim ``emergency``
    (it overrides quiet hours and overtakes everything queued).
    """
    if not isinstance(data, dict):
        raise EventInvalid([("body", "the body must be a JSON object")])
    try:
        event = Event.model_validate(data)
    except ValidationError as exc:
        raise EventInvalid(
            [(_path(err["loc"]), err["msg"].removeprefix("Value error, ")) for err in exc.errors()]
        ) from None
    if event.type not in required:
        supported = ", ".join(sorted(required))
        raise EventInvalid([("type", f"unsupported event type {event.type!r}; supported: {supported}")])
    if event.priority == "emergency" and event.type not in emergency_types:
        raise EventInvalid(
            [("priority", f"'emergency' is reserved for {', '.join(sorted(emergency_types))}")]
        )
    missing = [path for path in required[event.type] if _lookup(event, path) in (None, "", [])]
    if missing:
        raise EventInvalid([(path, f"required for {event.type}") for path in missing])
    notice = event.notice
    if notice and notice.starts_at and notice.ends_at and notice.ends_at <= notice.starts_at:
        raise EventInvalid([("notice.ends_at", "must be after notice.starts_at")])
    return event


def _lookup(event: Event, path: str) -> object:
    value: object = event
    for name in path.split("."):
        value = getattr(value, name, None)
        if value is None:
            return None
    return value


# Every field of the case event by its dotted path, with its shape: what the CRM mappings and the
# event files may name (tests/crm_adapters check it against the models above).
EVENT_FIELDS: dict[str, str] = {
    "id": "text",
    "type": "text",
    "occurred_at": "datetime",
    "priority": "text",
    "case.folio": "text",
    "case.category": "text",
    "case.status": "text",
    "case.progress": "number",
    "case.resolution_date": "date",
    "case.appointment.at": "datetime",
    "case.appointment.place": "text",
    "citizen.msisdn": "text",
    "citizen.name": "text",
    "citizen.language": "text",
    "area.zones": "list",
    "notice.text": "text",
    "notice.starts_at": "datetime",
    "notice.ends_at": "datetime",
}
