"""The subscription input models: one reading of topics, zones, numbers and languages for the API
and the import, and errors naming the field."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import BaseModel, ValidationError

from gateway.domain.catalog import TOPICS
from gateway.domain.events import Citizen
from gateway.domain.fields import field_errors
from gateway.domain.subscriptions import (
    Catalogue,
    SubscriberRow,
    Subscription,
    SubscriptionRequest,
    Subscriptions,
    UnsubscribeRequest,
    read_topics,
)
from gateway.domain.zones import load_zones

CATALOGUE = Catalogue(load_zones(), ("es", "en"))


def errors(model: type[BaseModel], data: dict) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        CATALOGUE.validate(model, data)
    return field_errors(caught.value)


def test_a_request_reads_topics_zones_and_languages_as_citizens_write_them():
    request = CATALOGUE.validate(
        SubscriptionRequest,
        {"msisdn": "55 1234 5678", "topic": "água", "zones": ["polanco 5", "11590"], "language": "es-MX"},
    )
    assert (request.msisdn, request.topic, request.language) == ("+525512345678", "AGUA", "es")
    assert [z.name for z in CATALOGUE.zones_of(request.zones)] == ["Polanco V Sección", "Anzures"]
    for every in ("TODO", "all", "*", "", None):
        request = CATALOGUE.validate(
            SubscriptionRequest, {"msisdn": "5512345678", "topic": every, "zones": None}
        )
        assert request.topic is None and request.topics == TOPICS and request.zones == []


def test_every_field_at_fault_is_named_with_its_reason():
    wrong = {"msisdn": "12345", "topic": "LUZ", "zones": ["Anzures", "Granad"], "language": "fr"}
    assert errors(SubscriptionRequest, {**wrong, "consent": "yes"}) == [
        ("msisdn", "'12345' is not a Mexican mobile number: expected 10 digits, optionally with +52 "
                   "(got 5 national digits)"),
        ("topic", "unknown topic 'LUZ': expected AGUA, VIAL, EMERGENCIA, AVISOS (empty: all)"),
        ("zones[1]", "unknown colonia or postal code 'Granad' in the zone catalogue; did you mean Granada?"),
        ("language", "expected es or en (the languages with templates), got 'fr'"),
        ("consent", 'the only value is "explicit" (the citizen asked to be subscribed again)'),
    ]  # fmt: skip
    assert errors(SubscriptionRequest, {"msisdn": "5512345678", "zones": "Polanco"}) == [
        ("zones", "must be a list of colonia names or postal codes")
    ]
    assert errors(SubscriptionRequest, {"msisdn": "5512345678", "zones": ["x"] * 51}) == [
        ("zones", "at most 50 zones")
    ]
    assert [name for name, _ in errors(UnsubscribeRequest, {"msisdn": "5512345678", "zone": "x"})] == ["zone"]


def test_an_import_row_follows_the_same_rules_with_cells_separated_by_semicolons():
    row = CATALOGUE.validate(
        SubscriberRow,
        {"msisdn": "+52 1 55 1234 5678", "topics": "agua; Water;VIAL", "zones": "Anzures; 11560"},
    )
    assert (row.msisdn, row.topics, row.zones, row.language) == (
        "+525512345678", ("AGUA", "VIAL"), ("Anzures", "11560"), None
    )  # fmt: skip
    again = CATALOGUE.validate(SubscriberRow, {"msisdn": "5512345679", "zones": "Anzures; 11560"})
    assert again.zones == row.zones and again.topics == TOPICS  # a cell validated once, remembered
    reasons = dict(
        errors(SubscriberRow, {"msisdn": "5512345678", "zones": "Anzures; Polanco", "language": "x"})
    )
    assert reasons["zones[1]"].startswith("'Polanco' means several colonias: Polanco I Sección (11510)")
    assert reasons["language"] == "expected es or en (the languages with templates), got 'x'"
    assert read_topics("") == TOPICS and read_topics("TODOS") == TOPICS


def test_the_case_event_reads_a_number_and_a_language_tag_the_same_way():
    citizen = Citizen.model_validate({"msisdn": "044 55 1234 5678", "language": "EN-us"})
    assert (citizen.msisdn, citizen.language) == ("+525512345678", "en")
    with pytest.raises(ValidationError) as caught:
        Citizen.model_validate({"msisdn": "12345"})
    assert field_errors(caught.value) == errors(SubscriptionRequest, {"msisdn": "12345"})


def test_the_response_leaves_out_what_the_request_did_not_do():
    view = Subscriptions(
        msisdn="+525512345678",
        known=True,
        opted_out=True,
        opted_out_at=datetime(2026, 11, 30, 16, 0),
        language="es",
        subscriptions=[Subscription(topic="AGUA", zone=None, cp=None, zone_id=None)],
        removed=1,
    )
    assert view.body() == {
        "msisdn": "+525512345678", "known": True, "opted_out": True, "opted_out_at": "2026-11-30T16:00:00Z",
        "language": "es", "subscriptions": [{"topic": "AGUA", "zone": None, "cp": None, "zone_id": None}],
        "removed": 1,
    }  # fmt: skip
