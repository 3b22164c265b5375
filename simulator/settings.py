"""Settings of the SMSC simulator: the ``[simulator]`` TOML table, validated.

```toml
[simulator]
http_listen = "127.0.0.1:8081"
short_code = "30311"

[[simulator.carriers]]
name = "telcel"
port = 2775
tps = 100                       # omit for no limit; above it submit_sm gets ESME_RTHROTTLED
receipt_delay = [1.0, 3.0]      # seconds, fixed (2.0) or random in a range
receipt_mode = "each"           # each receipt on its own timer and in its own write ("batched": per tick)
deliver_window = 1              # deliver_sm waiting for their deliver_sm_resp, per session
outcomes = {delivered = 0.95, undeliverable = 0.03, expired = 0.01, rejected = 0.01}
numbers = [{number = "5500000001", behaviour = "never_delivers"},
           {number = "5500000002", behaviour = "switched_off"}]
faults = {drop_after_pdus = 1000}
```

Every model forbids unknown keys; :func:`load_settings` turns a validation error into a one-line
``ConfigError`` naming the key path (``simulator.carriers.0.port: ...``).
"""

from __future__ import annotations

import math
import os
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from smpp_client.constants import Status

# --------------------------------------------------------------------------------------------------
# Delays: a number of seconds, or [min, max] for a uniform random delay.


def _delay(value: Any) -> Any:
    if isinstance(value, str):  # from an environment variable: "2", "0.5,2" or "[0.5, 2]"
        items = [item.strip() for item in value.strip().strip("[]").split(",")]
        try:
            numbers = [float(item) for item in items]
        except ValueError:
            raise ValueError("a delay is a number of seconds or [min, max]") from None
        value = numbers[0] if len(numbers) == 1 else numbers
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value), float(value))
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError("a delay is a number of seconds or [min, max]")
        return (value[0], value[1])
    if isinstance(value, dict) and set(value) <= {"min", "max"}:
        return (value.get("min", 0.0), value.get("max", value.get("min", 0.0)))
    raise ValueError("a delay is a number of seconds or [min, max]")


def _check_delay(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high < low:
        raise ValueError("a delay needs 0 <= min <= max (seconds)")
    return value


Delay = Annotated[tuple[float, float], BeforeValidator(_delay)]


class Outcome(StrEnum):
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"


# stat text, message_state of each outcome
OUTCOME_STAT = {
    Outcome.DELIVERED: ("DELIVRD", 2),
    Outcome.UNDELIVERABLE: ("UNDELIV", 5),
    Outcome.EXPIRED: ("EXPIRED", 3),
    Outcome.REJECTED: ("REJECTD", 8),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class OutcomeMix(_Model):
    """Relative weights of the final outcome of a message (need not sum to 1)."""

    delivered: float = Field(1.0, ge=0)
    undeliverable: float = Field(0.0, ge=0)
    expired: float = Field(0.0, ge=0)
    rejected: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> OutcomeMix:
        if self.delivered + self.undeliverable + self.expired + self.rejected <= 0:
            raise ValueError("at least one outcome needs a weight above 0")
        return self


ErrCode = Annotated[int, Field(ge=0, le=999)]


class ErrorCodes(_Model):
    """The ``err:`` codes of each outcome's receipt (one is picked at random per message)."""

    delivered: list[ErrCode] = Field(default_factory=lambda: [0], min_length=1)
    undeliverable: list[ErrCode] = Field(default_factory=lambda: [1], min_length=1)  # unknown subscriber
    expired: list[ErrCode] = Field(default_factory=lambda: [27], min_length=1)  # absent subscriber
    rejected: list[ErrCode] = Field(default_factory=lambda: [11], min_length=1)  # teleservice not provisioned


class Behaviour(StrEnum):
    DELIVER = "deliver"  # always DELIVRD
    NEVER_DELIVERS = "never_delivers"  # always UNDELIV
    SWITCHED_OFF = "switched_off"  # EXPIRED after expire_delay
    REJECT = "reject"  # REJECTD receipt
    INVALID = "invalid"  # submit_sm refused at once with ESME_RINVDSTADR
    NO_RECEIPT = "no_receipt"  # accepted, stays ENROUTE, no receipt ever


class NumberRule(_Model):
    """A rule for one destination; matched on the last 10 digits (the Mexican national number)."""

    number: str
    behaviour: Behaviour
    err: ErrCode | None = None
    delay: Delay | None = None

    @field_validator("number")
    @classmethod
    def _digits(cls, value: str) -> str:
        digits = "".join(ch for ch in value if ch.isdigit())
        if not digits:
            raise ValueError("a number needs digits")
        return digits

    @field_validator("delay")
    @classmethod
    def _delay_ok(cls, value):
        return None if value is None else _check_delay(value)


def number_key(digits: str) -> str:
    """The lookup key of a number: its last 10 digits."""
    return digits[-10:]


class Faults(_Model):
    """Fault switches for tests, all off by default; ``PUT /sim/carriers/{name}/faults`` sets them live."""

    drop_after_pdus: int | None = Field(None, ge=1, description="close a session once it has received N PDUs")
    drop_every_seconds: float | None = Field(
        None, gt=0, description="close every session of the carrier every T s"
    )
    response_delay: Delay = Field((0.0, 0.0), description="delay every response of a bound session")
    never_answer_fraction: float = Field(0.0, ge=0, le=1, description="submit_sm silently dropped, at random")
    never_answer_every: int | None = Field(None, ge=1, description="every Nth submit_sm silently dropped")
    refuse_binds_for: float = Field(0.0, ge=0, description="refuse binds (ESME_RBINDFAIL) for T s from now")
    submit_error_status: int | None = Field(
        None, ge=1, le=0xFFFFFFFF, description="answer submit_sm with this status"
    )
    submit_error_every: int | None = Field(None, ge=1, description="... every Nth submit_sm (default: all)")

    @field_validator("response_delay")
    @classmethod
    def _delay_ok(cls, value):
        return _check_delay(value)


class SimCarrierSettings(_Model):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    system_id: str = Field("smsgw", max_length=15)
    password: str = Field("smsgw", max_length=8)
    password_env: str | None = None  # read the password from this variable when it is set
    smsc_system_id: str | None = Field(None, max_length=15)  # sent in bind_resp; default: the carrier name
    max_binds: int = Field(4, ge=1)
    max_connections: int = Field(100, ge=1)  # TCP connections at once, bound or not; more are closed at once
    bind_timeout: float = Field(30.0, gt=0)  # a connection not bound within this many seconds is closed
    tps: float | None = Field(None, gt=0)  # token bucket shared by the carrier's binds; None = unlimited
    tps_burst: int | None = Field(None, ge=1)  # bucket size; default max(1, tps)
    window: int = Field(100, ge=1)  # unanswered requests per session before ESME_RTHROTTLED
    receipt_delay: Delay = (1.0, 3.0)
    expire_delay: Delay = (5.0, 5.0)  # when an EXPIRED receipt comes (switched-off numbers, expired outcome)
    outcomes: OutcomeMix = Field(default_factory=OutcomeMix)
    error_codes: ErrorCodes = Field(default_factory=ErrorCodes)
    numbers: list[NumberRule] = Field(default_factory=list)
    msgqfull_every: int | None = Field(None, ge=1)  # after every N accepted submit_sm ...
    msgqfull_burst: int = Field(0, ge=0)  # ... the next M get ESME_RMSGQFUL
    message_id_format: Literal["hex", "decimal"] = "hex"
    receipt_id_format: Literal["same", "hex", "decimal"] = "same"  # how receipts write the id
    message_id_start: int | None = Field(None, ge=0, le=10**18)  # ids counted from here, restarting on reset
    mo_prefixes: list[str] = Field(
        default_factory=list
    )  # E.164 prefixes of this carrier's subscribers, for MO
    deliver_timeout: float = Field(10.0, gt=0)  # deliver_sm not answered in this time is resent
    deliver_max_tries: int = Field(5, ge=1)
    deliver_window: int = Field(100, ge=1)  # deliver_sm outstanding per session
    receipt_mode: Literal["batched", "each"] = "batched"  # each: every deliver_sm on its own timer and write
    enquire_link_interval: float | None = Field(None, gt=0)  # the SMSC sends enquire_link when idle this long
    faults: Faults = Field(default_factory=Faults)

    @field_validator("receipt_delay", "expire_delay")
    @classmethod
    def _delay_ok(cls, value):
        return _check_delay(value)

    @field_validator("mo_prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        out = []
        for prefix in value:
            digits = "".join(ch for ch in prefix if ch.isdigit())
            if not digits:
                raise ValueError(f"prefix {prefix!r} has no digits")
            out.append(digits)
        return out

    @field_validator("max_connections")
    @classmethod
    def _room_for_binds(cls, value: int, info: ValidationInfo) -> int:
        binds = info.data.get("max_binds")
        if binds is not None and value < binds:
            raise ValueError(f"must be at least max_binds ({binds})")
        return value

    @model_validator(mode="after")
    def _password_from_env(self) -> SimCarrierSettings:
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is not None:
                if len(value) > 8:
                    raise ValueError(f"password from {self.password_env} longer than 8 characters")
                object.__setattr__(self, "password", value)
        return self


def _default_carriers() -> list[SimCarrierSettings]:
    return [
        SimCarrierSettings(name="telcel", port=2775, mo_prefixes=["52"]),
        SimCarrierSettings(name="movistar", port=2776),
    ]


class SimulatorSettings(_Model):
    http_listen: str = "127.0.0.1:8081"
    short_code: str = Field("30311", min_length=1, max_length=20)
    carriers: list[SimCarrierSettings] = Field(default_factory=_default_carriers, min_length=1)
    store_size: int = Field(100_000, ge=10)  # messages kept for GET /sim/messages (a ring)
    mo_store_size: int = Field(10_000, ge=10)
    concat_timeout: float = Field(600.0, gt=0)  # parts of a long message are grouped for this long
    tick_ms: float = Field(5.0, ge=1, le=100)  # receipt / retry timer granularity
    default_country_code: str = Field("52", pattern=r"^\d{1,3}$")  # 10-digit numbers get it for display

    @field_validator("http_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected HOST:PORT")
        return value

    @model_validator(mode="after")
    def _unique(self) -> SimulatorSettings:
        names = [c.name for c in self.carriers]
        if len(set(names)) != len(names):
            raise ValueError("carrier names must be unique")
        ports = [(c.host, c.port) for c in self.carriers if c.port]
        if len(set(ports)) != len(ports):
            raise ValueError("two carriers listen on the same port")
        return self

    @property
    def http_host(self) -> str:
        return self.http_listen.rpartition(":")[0]

    @property
    def http_port(self) -> int:
        return int(self.http_listen.rpartition(":")[2])

    def carrier(self, name: str) -> SimCarrierSettings:
        for carrier in self.carriers:
            if carrier.name == name:
                return carrier
        raise KeyError(name)


def load_settings(raw: dict | None) -> SimulatorSettings:
    """Validate the raw ``[simulator]`` table; a mistake raises ``ConfigError`` naming ``simulator.<key>``."""
    from config.settings import ConfigError, format_validation_error

    try:
        return SimulatorSettings.model_validate(raw or {})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "simulator")) from None


# Statuses the faults may use by name in the API (documentation aid).
STATUS_NAMES = {s.name: int(s) for s in Status}


def default_carriers_table() -> list[dict]:
    """The default carriers as ``[[simulator.carriers]]`` tables, for overriding their keys."""
    return [c.model_dump(exclude_defaults=True) for c in _default_carriers()]
