"""The link's typed configuration, from the gateway's settings: one CarrierConfig per carrier, the
router, and the carriers' receipt id relations (shared by the link and the status writer)."""

from __future__ import annotations

from collections.abc import Sequence

from config.settings import CarrierSettings, RoutingSettings
from smpp_client.config import CarrierConfig
from smpp_client.errors import parse_statuses
from smpp_client.message_ids import ReceiptIdRelations
from smpp_client.policies.router import RuleRouter


def carrier_config(carrier: CarrierSettings, source_addr: str) -> CarrierConfig:
    """``source_addr``: the short code every submit_sm is sent from."""
    return CarrierConfig(
        name=carrier.name,
        host=carrier.host,
        port=carrier.port,
        system_id=carrier.system_id,
        password=carrier.password,
        source_addr=source_addr,
        system_type=carrier.system_type,
        tps=carrier.tps,
        window=carrier.window,
        binds=carrier.binds,
        bind_mode=carrier.bind_mode,
        enquire_link_seconds=carrier.enquire_link_seconds,
        response_timeout_seconds=carrier.response_timeout_seconds,
        reconnect_min_seconds=carrier.reconnect_min_seconds,
        reconnect_max_seconds=carrier.reconnect_max_seconds,
        max_consecutive_timeouts=carrier.max_consecutive_timeouts,
        source_addr_ton=carrier.source_addr_ton,
        source_addr_npi=carrier.source_addr_npi,
        dest_addr_ton=carrier.dest_addr_ton,
        dest_addr_npi=carrier.dest_addr_npi,
        concat=carrier.concat,
        min_tps=carrier.min_tps,
        throttle_decrease=carrier.throttle_decrease,
        throttle_pause_seconds=carrier.throttle_pause_seconds,
        recovery_per_second=carrier.recovery_per_second,
        failover_on=parse_statuses(carrier.failover_on),
        receipt_ids=carrier.receipt_ids,
    )


def carrier_configs(carriers: Sequence[CarrierSettings], source_addr: str) -> list[CarrierConfig]:
    return [carrier_config(c, source_addr) for c in carriers]


def router(routing: RoutingSettings, carriers: Sequence[CarrierConfig]) -> RuleRouter:
    return RuleRouter(
        [c.name for c in carriers],
        prefixes=[(r.prefix, r.carrier) for r in routing.prefixes],
        weights=routing.weights,
        ported_path=routing.ported_numbers,
        failover=routing.failover,
        ported_reload_seconds=routing.ported_reload_seconds,
    )


def receipt_id_relations(carriers: Sequence[CarrierConfig]) -> ReceiptIdRelations:
    """Configured relations; ``auto`` ones are learned by the status writer from its matches."""
    return ReceiptIdRelations({c.name: c.receipt_ids for c in carriers})
