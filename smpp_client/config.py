"""Typed configuration of the link: one carrier (:class:`CarrierConfig`) and one bind of it
(:class:`SessionConfig`). Built by the application from its own settings; nothing here reads files
or the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from textcodec.segments import ConcatMethod

from .errors import DEFAULT_FAILOVER_ON, parse_statuses
from .message_ids import Relation

BindKind = Literal["transceiver", "transmitter", "receiver"]
BindMode = Literal["transceiver", "transmitter_receiver"]


@dataclass(slots=True)
class SessionConfig:
    carrier: str
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    system_type: str = ""
    window: int = 10
    enquire_link_seconds: float = 30.0
    response_timeout_seconds: float = 30.0
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    connect_timeout_seconds: float = 10.0
    max_consecutive_timeouts: int = 3
    bind_kind: BindKind = "transceiver"
    index: int = 0  # which of the carrier's binds: in the session's label

    @property
    def label(self) -> str:
        """The session's name in logs and metrics: telcel#0, or telcel#0/tr and telcel#0/re for a pair."""
        suffix = "" if self.bind_kind == "transceiver" else f"/{self.bind_kind[:2]}"
        return f"{self.carrier}#{self.index}{suffix}"


@dataclass(frozen=True, slots=True)
class CarrierConfig:
    """Everything a :class:`~smpp_client.carrier.Carrier` and its binds need."""

    name: str
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    source_addr: str = ""  # our short code, the sender of every submit_sm
    system_type: str = ""
    tps: float = 100.0  # segments per second, all binds together
    window: int = 10  # requests unanswered per bind
    binds: int = 1
    # "transceiver": `binds` transceivers; "transmitter_receiver": `binds` pairs of one transmitter
    # (submits) and one receiver (receipts, MO)
    bind_mode: BindMode = "transceiver"
    enquire_link_seconds: float = 30.0
    response_timeout_seconds: float = 30.0
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    max_consecutive_timeouts: int = 3  # responses timed out in a row that reset a link
    source_addr_ton: int = 6
    source_addr_npi: int = 0
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    concat: ConcatMethod = ConcatMethod.UDH8
    # the default throttle policy (AIMD): floor, decrease factor, pause, additive recovery
    min_tps: float = 1.0
    throttle_decrease: float = 0.5
    throttle_pause_seconds: float = 1.0
    recovery_per_second: float | None = None  # None: 2 % of tps, at least 1
    failover_on: frozenset[int] = parse_statuses(DEFAULT_FAILOVER_ON)  # routing errors
    receipt_ids: Relation = Relation.AUTO  # how receipts write the submit_sm_resp id
    # how long jobs wait for a link of this carrier to come back before they go elsewhere or back
    # (None: twice the first reconnect delay, between 1 and 5 seconds)
    link_down_grace_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.bind_mode not in ("transceiver", "transmitter_receiver"):
            raise ValueError(f"unknown bind mode {self.bind_mode!r}")
        object.__setattr__(self, "concat", ConcatMethod(self.concat))
        object.__setattr__(self, "receipt_ids", Relation(self.receipt_ids))

    @property
    def down_grace_seconds(self) -> float:
        if self.link_down_grace_seconds is not None:
            return self.link_down_grace_seconds
        return min(5.0, max(1.0, 2 * self.reconnect_min_seconds))

    def sessions(self) -> list[SessionConfig]:
        """One per bind: ``binds`` transceivers, or ``binds`` transmitter and receiver pairs."""
        kinds: tuple[BindKind, ...] = (
            ("transceiver",) if self.bind_mode == "transceiver" else ("transmitter", "receiver")
        )
        return [
            SessionConfig(
                carrier=self.name,
                host=self.host,
                port=self.port,
                system_id=self.system_id,
                password=self.password,
                system_type=self.system_type,
                window=self.window,
                enquire_link_seconds=self.enquire_link_seconds,
                response_timeout_seconds=self.response_timeout_seconds,
                reconnect_min_seconds=self.reconnect_min_seconds,
                reconnect_max_seconds=self.reconnect_max_seconds,
                max_consecutive_timeouts=self.max_consecutive_timeouts,
                bind_kind=kind,
                index=index,
            )
            for index in range(self.binds)
            for kind in kinds
        ]
