"""The link's typed configuration built from the settings: every carrier setting reaches it."""

from __future__ import annotations

import dataclasses

from config.settings import CarrierSettings, RoutingSettings
from gateway.link_config import carrier_config, receipt_id_relations, router
from smpp_client.config import CarrierConfig
from smpp_client.constants import Status
from smpp_client.message_ids import Relation
from textcodec.segments import ConcatMethod

# what the link has that the carrier's settings do not, and the settings it does not need
ONLY_IN_THE_LINK = {"source_addr", "link_down_grace_seconds"}
ONLY_IN_THE_SETTINGS = {"password_env"}


def settings(**extra) -> CarrierSettings:
    return CarrierSettings.model_validate(
        {"name": "telcel", "port": 2775, "system_id": "smsgw", "password": "pw", **extra}
    )


def test_every_carrier_setting_reaches_the_link():
    link_fields = {f.name for f in dataclasses.fields(CarrierConfig)}
    setting_fields = set(CarrierSettings.model_fields)
    assert link_fields - ONLY_IN_THE_LINK == setting_fields - ONLY_IN_THE_SETTINGS


def test_values_and_their_types():
    config = carrier_config(
        settings(
            tps=50,
            binds=2,
            bind_mode="transmitter_receiver",
            concat="udh16",
            failover_on=["ESME_RINVDSTADR", "0x45"],
            receipt_ids="submit_decimal_receipt_hex",
            throttle_pause_seconds=0.5,
        ),
        "30311",
    )
    assert (config.name, config.source_addr, config.password, config.tps) == ("telcel", "30311", "pw", 50)
    assert config.concat is ConcatMethod.UDH16
    assert config.failover_on == {Status.ESME_RINVDSTADR, Status.ESME_RSUBMITFAIL}
    assert config.receipt_ids is Relation.SUBMIT_DECIMAL_RECEIPT_HEX
    assert config.throttle_pause_seconds == 0.5
    labels = [(s.label, s.bind_kind) for s in config.sessions()]
    assert labels == [
        ("telcel#0/tr", "transmitter"),
        ("telcel#0/re", "receiver"),
        ("telcel#1/tr", "transmitter"),
        ("telcel#1/re", "receiver"),
    ]
    assert "pw" not in repr(config)


def test_the_router_and_the_relations():
    configs = [carrier_config(settings(name=n), "30311") for n in ("telcel", "movistar")]
    rules = RoutingSettings.model_validate(
        {"prefixes": [{"prefix": "5255", "carrier": "movistar"}], "failover": False}
    )
    routes = router(rules, configs)
    assert routes.candidates("+525512345678") == ["movistar"]
    assert routes.candidates("+523312345678") == ["telcel"]
    assert routes.refresh_seconds is None  # no ported-numbers file to watch
    relations = receipt_id_relations([carrier_config(settings(receipt_ids="same"), "30311")])
    assert relations.relation("telcel") is Relation.SAME
