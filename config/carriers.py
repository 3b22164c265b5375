"""The carriers: ``[[carriers]]`` (an SMSC each, its binds, speed and failover), ``[routing]``
(which carrier a message goes to) and ``[dispatch]`` (how the outbox is drained)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from .base import Section
from .secrets import WithSecrets


class CarrierSettings(WithSecrets):
    secrets: ClassVar[dict[str, str]] = {"password": "passwords"}
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=32)  # stored with each part
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    system_id: str
    password: str = Field("", repr=False, exclude=True)
    password_env: str | None = None
    system_type: str = ""
    tps: float = Field(100, gt=0)
    window: int = Field(10, ge=1, le=1000)
    binds: int = Field(1, ge=1, le=32)
    # "transceiver": `binds` transceiver sessions; "transmitter_receiver": `binds` pairs of one
    # transmitter (submits) and one receiver (receipts, MO)
    bind_mode: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    enquire_link_seconds: float = Field(30, gt=0)
    response_timeout_seconds: float = Field(30, gt=0)
    reconnect_min_seconds: float = Field(1, gt=0)
    reconnect_max_seconds: float = Field(60, gt=0)
    source_addr_ton: int = Field(6, ge=0, le=255)
    source_addr_npi: int = Field(0, ge=0, le=255)
    dest_addr_ton: int = Field(1, ge=0, le=255)
    dest_addr_npi: int = Field(1, ge=0, le=255)
    concat: Literal["udh8", "udh16", "sar", "payload"] = "udh8"
    # speed limit under throttling (AIMD), timeouts, failover
    min_tps: float = Field(1, gt=0)  # the rate never drops below this when the SMSC throttles
    throttle_decrease: float = Field(0.5, gt=0, lt=1)  # rate multiplied by this on ESME_RTHROTTLED/RMSGQFUL
    throttle_pause_seconds: float = Field(1, ge=0, le=60)  # and sending pauses this long
    recovery_per_second: float | None = Field(None, gt=0)  # additive recovery; default 2 % of tps (min 1)
    max_consecutive_timeouts: int = Field(3, ge=0)  # responses timed out in a row that reset the link
    failover_on: list[int | str] = Field(default_factory=lambda: ["ESME_RSUBMITFAIL"])  # routing errors
    # how receipts write the submit_sm_resp id: "auto" learns it from the first receipts that match
    # one way only; "same"; or in another base ("submit_decimal_receipt_hex", "submit_hex_receipt_decimal")
    receipt_ids: Literal["auto", "same", "submit_decimal_receipt_hex", "submit_hex_receipt_decimal"] = "auto"

    @field_validator("failover_on")
    @classmethod
    def _check_failover_on(cls, v: list[int | str]) -> list[int | str]:
        from smpp_client.errors import parse_status

        for item in v:
            parse_status(item)
        return v

    @model_validator(mode="after")
    def _reconnect_bounds(self) -> CarrierSettings:
        if self.reconnect_min_seconds > self.reconnect_max_seconds:
            raise ValueError("reconnect_min_seconds must not exceed reconnect_max_seconds")
        return self


class DispatchSettings(Section):
    batch_size: int = Field(500, ge=1)
    interval_seconds: float = Field(0.5, gt=0)
    lease_seconds: float = Field(120, gt=0)
    max_attempts: int = Field(10, ge=1)
    validity_hours: float = Field(24, gt=0)
    # status changes (submit results, receipts) trickling in wait up to this long for a batch
    status_linger_seconds: float = Field(0.1, ge=0, le=5)
    status_linger_batch: int = Field(200, ge=1)
    # several dispatch processes on one database: each renews its heartbeat this often; one silent
    # for process_stale_seconds is dead (its leased messages and binds are taken over)
    expiry_interval_seconds: float = Field(30, gt=0)  # how often messages past their validity expire
    heartbeat_seconds: float = Field(1.0, gt=0, le=60)
    process_stale_seconds: float = Field(5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _stale_after_beats(self) -> DispatchSettings:
        if self.process_stale_seconds < 3 * self.heartbeat_seconds:
            raise ValueError("process_stale_seconds: must be at least three heartbeat_seconds")
        return self


class PrefixRouteSettings(Section):
    prefix: str = Field(pattern=r"^\+?\d{1,15}$")  # E.164 digits: "5255" is +52 55…
    carrier: str


class RoutingSettings(Section):
    prefixes: list[PrefixRouteSettings] = Field(default_factory=list)  # longest prefix wins
    ported_numbers: str | None = None  # CSV file msisdn,carrier (ported numbers win over prefixes)
    ported_reload_seconds: float = Field(60, gt=0)  # the file is re-read when it changes
    weights: dict[str, float] = Field(default_factory=dict)  # traffic split when no rule matches
    failover: bool = True  # links down or a routing error: try the other carriers
