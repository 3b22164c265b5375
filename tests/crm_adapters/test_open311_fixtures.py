"""The GeoReport v2 specification's own example responses (tests/crm_adapters/fixtures/README.md),
served by aioresponses standing in for the CRM, through the whole poller."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from crm_adapters import state
from crm_adapters.open311.parsing import Open311Error, parse_errors, parse_list
from crm_adapters.open311.poller import Open311Poller
from gateway.store.models import cases
from tests.http_mocks import aioresponses

from .conftest import CITY, Clock, adapter_settings, stored_events

FIXTURES = Path(__file__).parent / "fixtures"
URL = "http://crm.example/open311/v2"


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_the_specifications_example_through_the_poller(db, intake, fmt):
    clock = Clock(datetime(2010, 4, 20, 0, 0))
    body = (FIXTURES / f"georeport_v2_requests.{fmt}").read_bytes()
    # GeoReport publishes no phone numbers: the city's directory knows them by request id
    db.transaction(
        state.save_phone_numbers, "cesac", [("638344", "+525512345678"), ("638349", "+525587654321")], clock()
    )
    settings = adapter_settings(
        URL,
        format=fmt,
        phone_field="",
        phone_lookup_field="service_request_id",
        backfill_hours=240,
        jurisdiction_id="sfgov.org",
    )
    poller = Open311Poller(settings, db, intake, city_tz=CITY, owner="t", now=clock)
    try:
        with aioresponses() as crm:
            crm.get(re.compile(rf"^{re.escape(URL)}/requests\.{fmt}\?.*$"), body=body, repeat=True)
            report = await poller.poll_once()
            assert report.ok, report.error
            seen = stored_events(db)  # requests side by side; one request's events in order
            assert [e for e in seen if "638344" in e[0]] == [
                ("open311-638344-received-20100414T143738Z", "case.received"),
                ("open311-638344-closed-20100414T143738Z", "case.closed"),  # "Duplicate request."
            ]
            assert [e for e in seen if "638349" in e[0]] == [
                ("open311-638349-received-20100419T143738Z", "case.received")
            ]
            clock.advance(minutes=1)
            again = await poller.poll_once()  # the same answer again: nothing new
            assert again.ok and again.accepted == 0
            urls = [str(key[1]) for key in crm.requests]
        assert all("jurisdiction_id=sfgov.org" in url for url in urls)
    finally:
        await poller.close()
    with db.engine.connect() as conn:
        rows = conn.execute(cases.select().order_by(cases.c.folio)).mappings().all()
    assert [(r["folio"], r["category"]) for r in rows] == [
        ("638344", "Sidewalk and Curb Issues"),
        ("638349", "Sidewalk and Curb Issues"),
    ]
    assert rows[0]["closed_at"] is not None and rows[1]["closed_at"] is None
    assert rows[0]["status"] == "Cerrada: Duplicate request."


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_the_example_parses_with_ids_as_strings(fmt):
    records = parse_list(
        (FIXTURES / f"georeport_v2_requests.{fmt}").read_bytes(), fmt, "service_requests", "request"
    )
    assert [r["service_request_id"] for r in records] == ["638344", "638349"]
    assert [r["service_code"] for r in records] == ["006", "006"]  # JSON's 006 read as written
    assert records[0]["status_notes"] == "Duplicate request."
    assert records[0]["zipcode"] == "94122"


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_the_example_error_names_the_servers_reason(fmt):
    error = parse_errors(403, (FIXTURES / f"georeport_v2_error_403.{fmt}").read_bytes(), fmt)
    assert isinstance(error, Open311Error)
    assert str(error) == "HTTP 403: 403: Invalid api_key received -- can't proceed with create_request."


async def test_a_refused_api_key_fails_the_cycle_with_the_servers_words(db, intake):
    clock = Clock(datetime(2010, 4, 20))
    poller = Open311Poller(adapter_settings(URL), db, intake, city_tz=CITY, owner="t", now=clock)
    try:
        with aioresponses() as crm:
            crm.get(
                re.compile(rf"^{re.escape(URL)}/requests\.json.*$"),
                status=403,
                body=(FIXTURES / "georeport_v2_error_403.json").read_bytes(),
                repeat=True,
            )
            report = await poller.poll_once()
    finally:
        await poller.close()
    assert (
        report.error
        == "Open311Error: HTTP 403: 403: Invalid api_key received -- can't proceed with create_request."
    )


def test_fixmystreets_update_feed_parses():
    (update,) = parse_list(
        (FIXTURES / "fixmystreet_servicerequestupdates.json").read_bytes(),
        "json",
        "service_request_updates",
        "request_update",
    )
    assert update["service_request_id"] == "2" and update["update_id"] == "2_f57de23c"
    assert update["status"] == "fixed"
