"""Signed requests over HTTP on SQLite and PostgreSQL: the signature binds the method, the path
with its query and the body; v1 only on POST /api/v1/events; a signature is accepted once, by any
app sharing the database; headers and JSON bodies are bounded before they are parsed (401 / 400,
never 500); JSON endpoints want application/json (415)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, select

from gateway import clock
from gateway.http.api.openapi import routes_of
from gateway.http.authentication import PUBLIC_ROUTES, V1_ROUTES
from gateway.http.signing import CLIENT_HEADER, SIGNATURE_HEADER, Signer, sign, sign_v1
from gateway.roles import Gateway as Running
from gateway.store import subscriptions
from gateway.store.citizens import upsert_citizen
from gateway.store.db import Database
from gateway.store.models import broadcasts, citizens, events, messages, seen_signatures
from gateway.store.zones import ids_of
from tests.api_gateway import api_settings, running

CITY = ZoneInfo("America/Mexico_City")
SECRET = "s3cret"
PROBLEM_JSON = "application/problem+json"
ANA = "+525512345678"
EVENT = {
    "id": "cesac-1",
    "type": "case.received",
    "case": {"folio": "MH-2026-1"},
    "citizen": {"msisdn": "55 1234 5678"},
}


class Gateway:
    """One app on the test database, and a CRM client signing for it."""

    def __init__(self, client: aiohttp.ClientSession, running: Running):
        self.client, self.running, self.db = client, running, running.db
        self.signer = Signer("cesac", SECRET)

    async def send(self, method: str, path: str, body: bytes = b"", headers: dict | None = None, **sign_kw):
        if headers is None:
            signed = self.signer.headers(method, path, body, **sign_kw)
            headers = {"Content-Type": "application/json", **signed}
        response = await self.client.request(method, path, data=body, headers=headers)
        text = await response.text()
        return response.status, (json.loads(text) if text else None), response.content_type

    def count(self, table) -> int:
        with self.db.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.fixture
async def gw(db_url):
    async with running(api_settings(db_url)) as (gateway, client):
        yield Gateway(client, gateway)


def _refused(result, detail: str) -> None:
    status, problem, content_type = result
    assert (status, content_type) == (401, PROBLEM_JSON), problem
    assert detail in problem["detail"], problem


def _bad_body(result, detail: str) -> None:
    status, problem, content_type = result
    assert (status, content_type) == (400, PROBLEM_JSON), problem
    assert problem["field"] == "body" and detail in problem["detail"], problem


def _subscribe(db: Database, msisdn: str = ANA) -> None:
    def work(conn):
        citizen_id, _, _ = upsert_citizen(conn, msisdn, "es", None, clock.utcnow())
        subscriptions.subscribe(conn, citizen_id, "AGUA", ids_of(conn, []) or None, clock.utcnow())

    db.transaction(work)


def _opted_out(db: Database) -> bool:
    with db.engine.connect() as conn:
        return bool(conn.execute(select(citizens.c.opted_out).where(citizens.c.msisdn == ANA)).scalar())


def _v1_headers(body: bytes) -> dict:
    signature = sign_v1(SECRET, body)
    return {"Content-Type": "application/json", CLIENT_HEADER: "cesac", SIGNATURE_HEADER: signature}


def _get_signature(path: str = "/api/v1/messages/1") -> dict:
    return {CLIENT_HEADER: "cesac", SIGNATURE_HEADER: sign(SECRET, "GET", path, b"")}


# --- the signature binds the method, the path and the query --------------------------------------


async def test_a_gets_signature_does_not_opt_a_citizen_out(gw):
    _subscribe(gw.db)
    path = "/api/v1/subscriptions?msisdn=%2B525512345678"
    assert (await gw.send("GET", "/api/v1/messages/1", headers=_get_signature()))[0] == 404
    _refused(await gw.send("DELETE", path, headers=_get_signature()), "signature does not match")
    # not even the same path and query signed for GET
    _refused(await gw.send("DELETE", path, headers=_get_signature(path)), "signature does not match")
    assert not _opted_out(gw.db)
    status, view, _ = await gw.send("DELETE", path)  # signed for DELETE: the opt-out
    assert status == 200 and view["opted_out"] is True


async def test_a_gets_signature_does_not_cancel_a_broadcast(gw):
    _subscribe(gw.db)
    water = {
        "id": "agua-1",
        "type": "water.outage",
        "area": {"zones": ["Anzures"]},
        "notice": {"starts_at": "2030-12-01T08:00:00-06:00", "ends_at": "2030-12-01T18:00:00-06:00"},
    }
    status, accepted, _ = await gw.send("POST", "/api/v1/events", json.dumps(water).encode())
    assert status == 202, accepted
    path = f"/api/v1/broadcasts/{accepted['broadcast_id']}/cancel"
    _refused(await gw.send("POST", path, headers=_get_signature()), "signature does not match")
    _refused(await gw.send("POST", path, headers=_get_signature(path)), "signature does not match")
    with gw.db.engine.connect() as conn:
        assert conn.execute(select(broadcasts.c.status)).scalar_one() != "cancelled"
    status, cancelled, _ = await gw.send("POST", path)
    assert status == 200 and cancelled["status"] == "cancelled"


async def test_a_signature_for_one_query_is_refused_for_another(gw):
    signed = {
        CLIENT_HEADER: "cesac",
        SIGNATURE_HEADER: sign(SECRET, "GET", "/api/v1/subscriptions?msisdn=5512345678", b""),
    }
    result = await gw.send("GET", "/api/v1/subscriptions?msisdn=5587654321", headers=signed)
    _refused(result, "does not match")


async def test_the_target_is_signed_as_sent_with_its_escapes(gw):
    path = "/api/v1/messages?msisdn=045%2055%201234%205678&status=queued,failed"
    status, page, _ = await gw.send("GET", path)
    assert status == 200 and page["items"] == []


# --- v1 only on POST /api/v1/events ---------------------------------------------------------------


def _signed_routes(app) -> list[tuple[str, str]]:
    return sorted(
        (m.upper(), p)
        for m, p in routes_of(app)
        if p.startswith("/api/v1/") and (m.upper(), p) not in PUBLIC_ROUTES
    )


async def test_v1_is_accepted_on_post_events(gw):
    body = json.dumps(EVENT).encode()
    headers = _v1_headers(body)
    status, accepted, _ = await gw.send("POST", "/api/v1/events", body, headers=headers)
    assert status == 202 and accepted["recipients"] == 1


async def test_v1_is_refused_on_every_other_signed_route(gw):
    routes = [r for r in _signed_routes(gw.running.app) if r not in V1_ROUTES]
    assert ("DELETE", "/api/v1/subscriptions") in routes and ("GET", "/api/v1/messages/{id}") in routes
    for method, template in routes:
        path = template.replace("{id}", "1")
        body = b'{"msisdn": "5512345678"}' if method != "GET" else b""
        headers = _v1_headers(body)
        result = await gw.send(method, path, body, headers=headers)
        _refused(result, "v1 signatures are accepted only on the events endpoints")
    assert gw.count(citizens) == 0


# --- a signature is accepted once ----------------------------------------------------------------


async def test_the_same_signed_post_twice_is_refused_the_second_time(gw):
    body = json.dumps(EVENT).encode()
    headers = {"Content-Type": "application/json", **gw.signer.headers("POST", "/api/v1/events", body)}
    status, first, _ = await gw.send("POST", "/api/v1/events", body, headers=headers)
    assert status == 202
    _refused(await gw.send("POST", "/api/v1/events", body, headers=headers), "signature already used")
    assert gw.count(events) == 1 and gw.count(messages) == 1
    status, again, _ = await gw.send("POST", "/api/v1/events", body)  # signed again: idempotent 202
    assert (status, again) == (202, first)


async def test_the_same_signed_post_sent_concurrently_is_accepted_once(gw):
    body = json.dumps(EVENT).encode()
    headers = {"Content-Type": "application/json", **gw.signer.headers("POST", "/api/v1/events", body)}
    sends = [gw.send("POST", "/api/v1/events", body, headers=headers) for _ in range(5)]
    results = await asyncio.gather(*sends)
    assert sorted(status for status, _, _ in results) == [202, 401, 401, 401, 401]
    assert gw.count(events) == 1 and gw.count(seen_signatures) == 1


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"id": "x", "type": "case.exploded"}'],
    ids=["400-malformed", "422-invalid"],
)
async def test_a_replayed_bad_event_is_refused_as_a_replay(gw, body):
    headers = {"Content-Type": "application/json", **gw.signer.headers("POST", "/api/v1/events", body)}
    status, _, _ = await gw.send("POST", "/api/v1/events", body, headers=headers)
    assert status in (400, 422)
    _refused(await gw.send("POST", "/api/v1/events", body, headers=headers), "signature already used")


async def test_a_replayed_get_is_refused(gw):
    headers = gw.signer.headers("GET", "/api/v1/stats")
    assert (await gw.send("GET", "/api/v1/stats", headers=headers))[0] == 200
    _refused(await gw.send("GET", "/api/v1/stats", headers=headers), "signature already used")


async def test_stripping_one_scheme_from_a_v1_and_v2_header_is_still_a_replay(gw):
    body = json.dumps(EVENT).encode()
    both = sign(SECRET, "POST", "/api/v1/events", body, with_v1=True)
    t, v2, v1 = both.split(",")
    for header in (both, f"{t},{v1}", f"{t},{v2}"):
        headers = {"Content-Type": "application/json", CLIENT_HEADER: "cesac", SIGNATURE_HEADER: header}
        result = await gw.send("POST", "/api/v1/events", body, headers=headers)
        if header == both:
            assert result[0] == 202
        else:
            _refused(result, "signature already used")


async def test_a_v1_replay_with_a_query_added_is_refused(gw):
    body = json.dumps(EVENT).encode()
    headers = _v1_headers(body)
    assert (await gw.send("POST", "/api/v1/events", body, headers=headers))[0] == 202
    _refused(await gw.send("POST", "/api/v1/events?again", body, headers=headers), "signature already used")


async def test_a_refused_signature_is_not_registered(gw):
    body = json.dumps(EVENT).encode()
    signed = gw.signer.headers("POST", "/api/v1/events", body, secret="x")
    wrong = {"Content-Type": "application/json", **signed}
    _refused(await gw.send("POST", "/api/v1/events", body, headers=wrong), "does not match")
    stale = gw.signer.headers("POST", "/api/v1/events", body, timestamp=int(time.time()) - 3600)
    _refused(await gw.send("POST", "/api/v1/events", body, headers=stale), "timestamp")
    assert gw.count(seen_signatures) == 0


async def test_a_replay_to_another_app_on_the_same_database_is_refused(db_url, gw):
    async with contextlib.AsyncExitStack() as stack:
        running_other, http = await stack.enter_async_context(running(api_settings(db_url)))
        other = Gateway(http, running_other)
        body = json.dumps(EVENT).encode()
        headers = {"Content-Type": "application/json", **gw.signer.headers("POST", "/api/v1/events", body)}
        assert (await gw.send("POST", "/api/v1/events", body, headers=headers))[0] == 202
        _refused(await other.send("POST", "/api/v1/events", body, headers=headers), "signature already used")
        headers = gw.signer.headers("GET", "/api/v1/stats")
        assert (await other.send("GET", "/api/v1/stats", headers=headers))[0] == 200
        _refused(await gw.send("GET", "/api/v1/stats", headers=headers), "signature already used")


# --- bounded before parsed ------------------------------------------------------------------------


async def test_a_5000_digit_timestamp_is_401_not_500(gw):
    header = "t=" + "9" * 5000 + ",v2=" + "ab" * 32
    headers = {CLIENT_HEADER: "cesac", SIGNATURE_HEADER: header}
    _refused(await gw.send("GET", "/api/v1/stats", headers=headers), "longer than 1024 characters")
    header = "t=" + "9" * 13 + ",v2=" + "ab" * 32
    headers = {CLIENT_HEADER: "cesac", SIGNATURE_HEADER: header}
    _refused(await gw.send("GET", "/api/v1/stats", headers=headers), "at most 12 digits")


def _nested(depth: int) -> bytes:
    return b'{"id": "deep", "type": "case.received", "x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("depth", [33, 1000, 5000, 20000])
async def test_json_nested_too_deep_is_400_naming_body(gw, depth):
    _bad_body(await gw.send("POST", "/api/v1/events", _nested(depth)), "nested more than 32 levels deep")
    assert gw.count(events) == 0


async def test_json_nested_32_deep_is_parsed(gw):
    status, problem, _ = await gw.send("POST", "/api/v1/events", _nested(32))
    assert status == 422 and problem["field"] != "body"  # parsed, then refused as an event


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        pytest.param("9" * 5000, "more than 20 digits", id="5000-digit-integer"),
        pytest.param("-" + "9" * 21, "more than 20 digits", id="21-digit-negative"),
        pytest.param("0." + "1" * 50, "longer than 40 characters", id="long-fraction"),
        pytest.param("1e999", "out of range", id="infinite"),
    ],
)
async def test_numbers_out_of_bounds_are_400_naming_body(gw, number, detail):
    body = b'{"id": "n", "type": "case.received", "case": {"progress": %s}}' % number.encode()
    _bad_body(await gw.send("POST", "/api/v1/events", body), detail)
    status, problem, _ = await gw.send("POST", "/api/v1/subscriptions", b'{"msisdn": %s}' % number.encode())
    assert status == 400 and problem["field"] == "body"
    assert gw.count(events) == 0 and gw.count(citizens) == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_json_constants_are_400_malformed(gw, constant):
    body = b'{"id": "n", "type": "case.received", "x": %s}' % constant.encode()
    _bad_body(await gw.send("POST", "/api/v1/events", body), "not valid JSON")


async def test_a_20_digit_integer_is_parsed(gw):
    body = b'{"id": "n", "type": "case.received", "case": {"folio": "MH-1", "progress": %s}}' % (b"9" * 20)
    status, problem, _ = await gw.send("POST", "/api/v1/events", body)
    assert status == 422 and problem["field"] == "case.progress"


# --- Content-Type ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/events", json.dumps(EVENT).encode()),
        ("POST", "/api/v1/subscriptions", b'{"msisdn": "5512345678"}'),
        ("DELETE", "/api/v1/subscriptions", b'{"msisdn": "5512345678"}'),
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_json_body_sent_as_another_media_type_is_415(gw, method, path, body, content_type):
    headers = gw.signer.headers(method, path, body)
    if content_type is not None:
        headers["Content-Type"] = content_type
    status, problem, media = await gw.send(method, path, body, headers=headers)
    assert (status, media) == (415, PROBLEM_JSON), problem
    assert problem["field"] == "Content-Type" and "application/json" in problem["detail"]
    assert gw.count(events) == 0 and gw.count(citizens) == 0


async def test_application_json_with_a_charset_is_accepted(gw):
    body = json.dumps(EVENT).encode()
    signed = gw.signer.headers("POST", "/api/v1/events", body)
    headers = {"Content-Type": "application/json; charset=utf-8", **signed}
    assert (await gw.send("POST", "/api/v1/events", body, headers=headers))[0] == 202


async def test_a_delete_with_its_query_and_no_body_needs_no_content_type(gw):
    path = "/api/v1/subscriptions?msisdn=5512345678&topic=AGUA"
    status, view, _ = await gw.send("DELETE", path, headers=gw.signer.headers("DELETE", path))
    assert status == 200 and view["removed"] == 0


# --- the OpenAPI document says so -----------------------------------------------------------------


async def test_openapi_describes_v2_v1_on_events_only_and_the_new_answers(gw):
    status, doc, _ = await gw.send("GET", "/api/v1/openapi.json", headers={})  # public, unsigned
    assert status == 200
    scheme = doc["components"]["securitySchemes"]["signature"]["description"]
    assert '"<t>.<METHOD>.<path with query>.<raw body>"' in scheme and "POST /api/v1/events" in scheme
    paths = doc["paths"]
    event = paths["/api/v1/events"]["post"]
    assert {"400", "401", "409", "413", "415", "422"} <= set(event["responses"])
    assert "v1" in event["description"]
    for method in ("post", "delete"):
        assert "415" in paths["/api/v1/subscriptions"][method]["responses"]
    cancel = paths["/api/v1/broadcasts/{id}/cancel"]["post"]
    assert "already used" in cancel["responses"]["401"]["description"]
