"""The canonical case event (docs/api.md) and its validation.

Every inbound channel (webhook, Open311 poller, file import) produces an :class:`Event`. Validation
errors carry the dotted path of the field at fault ("citizen.msisdn").
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .catalog import EVENT_KINDS
from .fields import LanguageTag, Msisdn, field_errors

EMERGENCY_TYPES = ["emergency.alert"]  # the only types that may claim the emergency priority


class EventInvalid(ValueError):
    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


class _Model(BaseModel):
    # CRMs add fields of their own; unknown ones are ignored, known ones are strict.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Citizen(_Model):
    msisdn: Msisdn
    name: str | None = Field(default=None, max_length=120)
    # NoticePolicy.prepare refuses a language without templates
    language: LanguageTag = Field(default=None, max_length=35)


def _in_range(value: datetime | None) -> datetime | None:
    """A moment the database can keep: in years 1 to 9999 once brought to UTC (0001-01-01T00:00+14:00
    is not)."""
    if value is not None and value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range: must fall in the years 1 to 9999 in UTC") from None
    return value


def _require_offset(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must include a time zone offset, e.g. 2026-11-29T10:00:00-06:00")
    return _in_range(value)


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


def _schema_by_type(schema: dict[str, Any]) -> None:
    """The JSON schema says what parse_event checks beyond the fields: the catalogue's types, what
    each needs (present and not empty), and who may claim the emergency priority."""
    schema["properties"]["type"]["enum"] = list(EVENT_KINDS)
    types_by_needs: dict[tuple[str, ...], list[str]] = {}
    for kind in EVENT_KINDS.values():
        types_by_needs.setdefault(kind.required, []).append(kind.type)
    rules: list[dict[str, Any]] = [
        {"if": _one_of(type=types), "then": _needs(needs)} for needs, types in types_by_needs.items()
    ]
    emergency_only = {"properties": {"type": {"enum": EMERGENCY_TYPES}}}
    rules.append({"if": _one_of(priority=["emergency"]), "then": emergency_only})
    schema["allOf"] = rules
    needs = "; ".join(f"{', '.join(types)}: {', '.join(n)}" for n, types in types_by_needs.items())
    schema["description"] = (
        f"A CRM event. `id`, `type` and what the type needs are required ({needs}). Broadcast types "
        "name `area.zones` (colonia names or postal codes of the catalogue) except emergency.alert, "
        "which without zones goes to every zone. `notice.ends_at` is after `notice.starts_at`. "
        "Spaces around texts are removed; fields the gateway does not know are ignored."
    )


def _one_of(**values: list[str]) -> dict[str, Any]:
    return {"required": list(values), "properties": {k: {"enum": v} for k, v in values.items()}}


def _needs(paths: tuple[str, ...]) -> dict[str, Any]:
    """``("case.folio", "citizen.msisdn")`` as nested ``required``: present, not null, not empty."""
    root: dict[str, Any] = {}
    for path in paths:
        *parents, leaf = path.split(".")
        node = root
        for name in parents:
            _require(node, name)
            node = node.setdefault("properties", {}).setdefault(name, {"type": "object"})
        _require(node, leaf)
        node.setdefault("properties", {})[leaf] = _NOT_EMPTY[EVENT_FIELDS[path]]
    return root


def _require(node: dict[str, Any], name: str) -> None:
    required = node.setdefault("required", [])
    if name not in required:
        required.append(name)


_NOT_EMPTY: dict[str, dict[str, Any]] = {
    "text": {"type": "string", "minLength": 1},
    "datetime": {"type": "string"},
    "date": {"type": "string"},
    "number": {"type": "integer"},
    "list": {"type": "array", "minItems": 1},
}


class Event(_Model):
    model_config = ConfigDict(json_schema_extra=_schema_by_type)

    id: str = Field(min_length=1, max_length=128, description="the CRM's id; reposting it changes nothing")
    type: str = Field(min_length=1, max_length=64)
    occurred_at: datetime | None = Field(default=None, description="with an offset")
    priority: Literal["emergency", "high", "normal", "low"] | None = Field(
        default=None, description="overrides the type's; only emergency.alert may say emergency"
    )
    case: Case | None = None
    citizen: Citizen | None = None
    area: Area | None = None
    notice: Notice | None = None

    _aware = field_validator("occurred_at")(_require_offset)


def parse_event(
    data: object,
    required: dict[str, tuple[str, ...]],
    emergency_types: frozenset[str] = frozenset(EMERGENCY_TYPES),
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
        raise EventInvalid(field_errors(exc)) from None
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
