"""``[[crm_adapters]]``: the ways a CRM that does not call the webhook is connected.

``kind = "open311"`` polls a GeoReport v2 endpoint (crm_adapters/open311); ``kind = "mapped_json"``
takes the CRM's own JSON at ``POST /api/v1/crm/{client}/events`` through a declarative mapping file
(crm_adapters/mapping.py). Both act for one ``[[crm_clients]]`` entry (``client``): its events,
its status callbacks, its view of the messages. Secrets (an Open311 api_key) come only from the
environment variable named by ``api_key_env``.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .secrets import WithSecrets

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

DEFAULT_STATUS_MAP = {
    "open": "Abierta",
    "closed": "Cerrada",
    "reopened": "Reabierta",
    "fixed": "Resuelta",
    "in_progress": "En proceso",
    "action_scheduled": "Trabajo programado",
    "investigating": "En revisión",
    "planned": "Planeada",
    "duplicate": "Duplicada",
    "not_councils_responsibility": "No corresponde a la alcaldía",
    "no_further_action": "Sin más acciones",
    "internal_referral": "Turnada a otra área",
}
DEFAULT_RESOLVED_STATES = ["closed", "fixed", "resolved"]
DEFAULT_CLOSED_STATES = [
    "duplicate",
    "not_councils_responsibility",
    "no_further_action",
    "internal_referral",
    "not_responsible",
    "cancelled",
]
DEFAULT_CLOSING_NOTES = [r"duplicad", r"duplicate", r"improcedente", r"no procede", r"cancelad"]


class _Adapter(WithSecrets):
    kind: str
    client: str = Field(min_length=1)  # the [[crm_clients]] id it acts for
    name: str | None = Field(None, pattern=_NAME)  # default: "<kind>-<client>"

    @property
    def adapter_name(self) -> str:
        return self.name or f"{self.kind}-{self.client}"


class Open311AdapterSettings(_Adapter):
    """A GeoReport v2 endpoint polled every ``every_seconds``."""

    secrets: ClassVar[dict[str, str]] = {"api_key": "keys"}
    kind: Literal["open311"]
    url: str  # the endpoint root: requests.json / requests.xml under it
    format: Literal["json", "xml"] = "json"
    api_key: str = Field("", repr=False, exclude=True)
    api_key_env: str | None = None
    jurisdiction_id: str | None = None
    every_seconds: float = Field(60, ge=1)
    # where the citizen's number is: a field of the request (dotted path; "" for none) and/or the
    # phone directory (smsgw crm phones import), looked up by the value of this request field
    phone_field: str = "phone"
    phone_lookup_field: str | None = None
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")  # the citizens' language; default: as stored
    folio_prefix: str = Field("", pattern=r"^[A-Za-z0-9._/-]*$")  # case.folio = prefix + request id
    id_prefix: str = Field("open311", pattern=_NAME)  # event ids: <id_prefix>-<request id>-<what>-<when>
    # how changes are learnt: "refetch" tracked requests by id; "updated_after" (Chicago's
    # parameter); "servicerequestupdates" (FixMyStreet's extension); "auto": the FixMyStreet feed if
    # the server answers it, else refetch
    updates: Literal["auto", "refetch", "updated_after", "servicerequestupdates"] = "auto"
    max_results: int = Field(1000, ge=1, le=100_000)  # rows the server returns at most per query
    page_size: int | None = Field(None, ge=1, le=10_000)  # send page / page_size (the paging extension)
    max_window_days: float = Field(90, gt=0, le=90)
    id_batch: int = Field(50, ge=1, le=500)  # ids per service_request_id=a,b,c query
    concurrency: int = Field(4, ge=1, le=32)  # queries in flight at once
    backfill_hours: float = Field(0, ge=0, le=90 * 24)  # at the first start: requests this old are announced
    overlap_seconds: float = Field(300, ge=0)  # each creation window starts this much before the last end
    follow_closed_days: float = Field(7, ge=0)  # a finished request is still re-fetched (reopened?) this long
    timeout_seconds: float = Field(20, gt=0)
    connect_timeout_seconds: float = Field(5, gt=0)
    retries: int = Field(2, ge=0, le=10)  # per query, on a timeout, a connection error or a 5xx / 429
    retry_backoff_seconds: float = Field(1, ge=0)  # doubles per retry
    max_backoff_seconds: float = Field(900, gt=0)  # failed cycles in a row space the next ones up to this
    server_timezone: str | None = None  # for datetimes without an offset; default: [gateway] timezone
    refresh_status_after_seconds: float = Field(300, ge=0)  # ESTADO re-reads an older copy (0: never)
    refresh_timeout_seconds: float = Field(3, gt=0)
    status_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))
    resolved_states: list[str] = Field(default_factory=lambda: list(DEFAULT_RESOLVED_STATES))
    closed_states: list[str] = Field(default_factory=lambda: list(DEFAULT_CLOSED_STATES))
    closing_notes: list[str] = Field(default_factory=lambda: list(DEFAULT_CLOSING_NOTES))
    agency_text: str = "turnada a {agency}"
    expected_text: str = "atención estimada el {date}"

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        if not re.match(r"https?://[^/\s]+", v):
            raise ValueError(f"expected an http:// or https:// URL, got {v!r}")
        return v.rstrip("/")

    @field_validator("status_map")
    @classmethod
    def _lower_keys(cls, v: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_STATUS_MAP, **{k.strip().lower(): text for k, text in v.items()}}

    @field_validator("resolved_states", "closed_states")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [s.strip().lower() for s in v]

    @field_validator("closing_notes")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for i, pattern in enumerate(v):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"[{i}]: not a regular expression: {exc}") from None
        return v

    @field_validator("agency_text", "expected_text")
    @classmethod
    def _format(cls, v: str, info: ValidationInfo) -> str:
        key = "agency" if info.field_name == "agency_text" else "date"
        try:
            v.format(**{key: "x"})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"may name only {{{key}}}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Open311AdapterSettings:
        if self.server_timezone is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(self.server_timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"server_timezone: unknown time zone {self.server_timezone!r}") from None
        if set(self.resolved_states) & set(self.closed_states):
            both = ", ".join(sorted(set(self.resolved_states) & set(self.closed_states)))
            raise ValueError(f"resolved_states and closed_states both name {both}")
        if self.page_size is not None and self.page_size > self.max_results:
            raise ValueError("page_size must not exceed max_results")
        return self


class MappedJsonAdapterSettings(_Adapter):
    """The CRM's own JSON at POST /api/v1/crm/{client}/events, through ``mapping``."""

    kind: Literal["mapped_json"]
    mapping: str  # the mapping file (TOML or JSON), relative to the configuration file


CrmAdapterSettings = Annotated[
    Open311AdapterSettings | MappedJsonAdapterSettings, Field(discriminator="kind")
]


def check_adapters(adapters: list, client_ids: set[str]) -> None:
    """Cross-entry rules: known clients, unique names, one mapping per client (raises ValueError)."""
    names: dict[str, int] = {}
    mapped: dict[str, int] = {}
    prefixes: dict[tuple[str, str], int] = {}
    for i, adapter in enumerate(adapters):
        if adapter.client not in client_ids:
            raise ValueError(f"crm_adapters[{i}].client: unknown crm client {adapter.client!r}")
        name = adapter.adapter_name
        if name in names:
            raise ValueError(f"crm_adapters[{i}].name: {name!r} is also crm_adapters[{names[name]}]")
        names[name] = i
        if adapter.kind == "mapped_json":
            if adapter.client in mapped:
                raise ValueError(
                    f"crm_adapters[{i}].client: {adapter.client!r} already has a mapping "
                    f"(crm_adapters[{mapped[adapter.client]}])"
                )
            mapped[adapter.client] = i
        else:
            key = (adapter.client, adapter.id_prefix)
            if key in prefixes:
                raise ValueError(
                    f"crm_adapters[{i}].id_prefix: {adapter.id_prefix!r} is also used by "
                    f"crm_adapters[{prefixes[key]}] for the same client (event ids would collide)"
                )
            prefixes[key] = i
