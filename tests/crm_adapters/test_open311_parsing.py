"""GeoReport bodies and what a change of a request means (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crm_adapters.open311.changes import ChangeRules, Snapshot, Unusable
from crm_adapters.open311.parsing import (
    MalformedResponse,
    Open311Error,
    parse_datetime,
    parse_list,
)

from .conftest import CITY, adapter_settings

NOW = datetime(2026, 12, 1, 16, 0)


def requests(body: bytes, fmt: str = "json"):
    return parse_list(body, fmt, "service_requests", "request")


def test_numbers_with_leading_zeros_are_read_as_text_and_strings_are_untouched():
    (record,) = requests(
        b'[{"service_request_id": 12, "service_code": 006, "description": "ver: 007, 0012"}]'
    )
    assert record == {"service_request_id": "12", "service_code": "006", "description": "ver: 007, 0012"}


def test_wrapped_json_is_read_too():
    assert requests(b'{"service_requests": [{"service_request_id": "a"}]}') == [{"service_request_id": "a"}]
    assert requests(b'{"service_requests": {"request": {"service_request_id": "b"}}}') == [
        {"service_request_id": "b"}
    ]


@pytest.mark.parametrize(
    ("body", "fmt", "what"),
    [
        (b"[{", "json", "not valid JSON"),
        (b"[1, 2]", "json", "item 0 is not an object"),
        (b'{"x": 1}', "json", "expected an array"),
        (b"\xff\xfe", "json", "not UTF-8"),
        (b"<service_requests><request>", "xml", "not valid XML"),
        (b"<html><body>Maintenance</body></html>", "xml", "expected <service_requests>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><service_requests/>',
            "xml",
            "DOCTYPE",
        ),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body, fmt, what):
    with pytest.raises(MalformedResponse, match=what):
        requests(body, fmt)


def test_an_error_list_in_a_200_is_an_error():
    with pytest.raises(Open311Error, match="jurisdiction_id not found"):
        requests(b'[{"code": 404, "description": "jurisdiction_id not found"}]')
    with pytest.raises(Open311Error, match="bad"):
        requests(b"<errors><error><code>400</code><description>bad</description></error></errors>", "xml")


def test_repeated_xml_elements_become_lists():
    (record,) = requests(
        b"<service_requests><request><service_request_id>1</service_request_id>"
        b"<notes><note><description>a</description></note><note><description>b</description></note></notes>"
        b"</request></service_requests>",
        "xml",
    )
    assert record["notes"] == {"note": [{"description": "a"}, {"description": "b"}]}


def test_datetimes_without_an_offset_are_in_the_servers_zone():
    assert parse_datetime("2026-12-01T10:00:00", CITY) == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    assert parse_datetime("2026-12-01T10:00:00-08:00", CITY) == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    assert parse_datetime("2026-12-01T10:00:00Z", CITY) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert parse_datetime(None, CITY) is None
    with pytest.raises(ValueError):
        parse_datetime("yesterday", CITY)
    for edge in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59"):
        with pytest.raises(ValueError, match="out of range"):  # was an OverflowError
            parse_datetime(edge, CITY)


# --- changes -----------------------------------------------------------------------------------------


@pytest.fixture
def rules() -> ChangeRules:
    return ChangeRules(adapter_settings("http://crm.example/v2"), ZoneInfo("America/Mexico_City"))


def snap(rules, before=None, **record) -> Snapshot:
    record = {"service_request_id": "9", "requested_datetime": "2026-12-01T10:00:00Z", **record}
    return rules.snapshot(rules.observe(record), before, NOW)


@pytest.mark.parametrize(
    ("status", "notes", "phase"),
    [
        ("open", None, "open"),
        ("closed", "Bache tapado", "resolved"),
        ("closed", "Duplicate request.", "closed"),
        ("closed", "Improcedente: fuera de la alcaldía", "closed"),
        ("fixed", None, "resolved"),
        ("duplicate", None, "closed"),
        ("in_progress", None, "open"),
        ("IN_PROGRESS", None, "open"),
    ],
)
def test_phases(rules, status, notes, phase):
    assert snap(rules, status=status, status_notes=notes).phase == phase


def test_what_a_status_change_says(rules):
    before = snap(rules, status="open")
    events, kept = rules.events(before, None, "+525512345678", now=NOW)
    assert [e["type"] for e in events] == ["case.received"] and kept.announced
    notes = snap(
        rules, kept, status="open", status_notes="Cuadrilla asignada", updated_datetime="2026-12-01T11:00:00Z"
    )
    (event,), kept2 = rules.events(notes, kept, "+525512345678", now=NOW)
    assert event["type"] == "case.status_changed" and event["case"]["status"] == "Abierta: Cuadrilla asignada"
    assert event["id"] == "open311-9-status-20261201T110000Z"
    expected = snap(
        rules,
        kept2,
        status="open",
        status_notes="Cuadrilla asignada",
        expected_datetime="2026-12-05T18:00:00Z",
    )
    (event,), _ = rules.events(expected, kept2, "+525512345678", now=NOW)
    assert event["case"]["status"] == "Abierta, atención estimada el 05/12/2026"


def test_without_a_number_nothing_is_sent_and_the_request_is_announced_later(rules):
    first = snap(rules, status="open")
    events, kept = rules.events(first, None, None, now=NOW)
    assert events == [] and not kept.announced
    events, kept = rules.events(first, kept, "+525512345678", now=NOW)
    assert [e["type"] for e in events] == ["case.received"] and kept.announced


def test_the_received_event_id_does_not_depend_on_what_changed_since(rules):
    a, _ = rules.events(snap(rules, updated_datetime="2026-12-01T10:00:00Z"), None, "+525512345678", now=NOW)
    b, _ = rules.events(snap(rules, updated_datetime="2026-12-01T12:00:00Z"), None, "+525512345678", now=NOW)
    assert a[0]["id"] == b[0]["id"] == "open311-9-received-20261201T100000Z"


def test_ids_that_cannot_be_folios_are_refused_and_odd_ids_are_safe_in_event_ids(rules):
    with pytest.raises(Unusable):
        snap(rules, service_request_id="con espacios")
    events, _ = rules.events(snap(rules, service_request_id="SR/19.7"), None, "+525512345678", now=NOW)
    assert events[0]["case"]["folio"] == "SR/19.7"
    assert events[0]["id"].startswith("open311-SR_19.7-received-") and len(events[0]["id"]) <= 128
