"""The real aiohttp app over HTTP, on SQLite and PostgreSQL: events, signatures, messages."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from unittest import mock

import aiohttp
import pytest
from aiohttp import StreamReader
from aiohttp.test_utils import make_mocked_request
from sqlalchemy import func, select, update

from gateway.http.bodies import read_body
from gateway.http.signing import Signer, sign
from gateway.roles import Gateway, Role
from gateway.store.db import Database
from gateway.store.models import cases, citizens, events, messages
from tests.api_gateway import api_settings, running

SECRET = "s3cret"
PROBLEM_JSON = "application/problem+json"
EVENT = {
    "id": "cesac-000123",
    "type": "case.received",
    "occurred_at": "2026-11-30T03:00:00Z",
    "case": {"folio": "MH-2026-004512", "category": "Fuga de agua"},
    "citizen": {"msisdn": "55 1234 5678", "name": "Ana", "language": "es"},
}
EXPECTED_BODY = (
    "Su reporte MH-2026-004512 fue recibido el 29/11/2026. Consulte: ESTADO MH-2026-004512 al 30311."
)
TABLES = {"events": events, "messages": messages, "citizens": citizens, "cases": cases}


@dataclass
class Api:
    client: aiohttp.ClientSession
    gateway: Gateway
    signer: Signer = field(default_factory=lambda: Signer("cesac", SECRET))

    @property
    def db(self) -> Database:
        return self.gateway.db

    @property
    def dispatcher_woken(self) -> int:
        """How many times the intake woke the dispatcher."""
        return self.gateway.signals.outbox.sets

    async def post_raw(
        self,
        body: bytes,
        *,
        client: str | None = "cesac",
        secret: str = SECRET,
        timestamp: int | None = None,
        signature: str | None = None,
        content_type: str = "application/json",
    ):
        headers = {
            "Content-Type": content_type,
            **self.signer.headers("POST", "/api/v1/events", body, secret=secret, timestamp=timestamp),
        }
        if client is None:
            del headers["X-Smsgw-Client"]
        else:
            headers["X-Smsgw-Client"] = client
        if signature is not None:
            headers["X-Smsgw-Signature"] = signature
        return await self.client.post("/api/v1/events", data=body, headers=headers)

    async def post(self, event: dict, **kwargs):
        return await self.post_raw(json.dumps(event).encode(), **kwargs)

    async def get_signed(self, path: str, *, secret: str = SECRET):
        return await self.client.get(path, headers=self.signer.headers("GET", path, secret=secret))

    def counts(self) -> dict[str, int]:
        with self.db.engine.connect() as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in TABLES.items()
            }

    def messages(self) -> list[dict]:
        with self.db.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(messages).order_by(messages.c.id)).mappings()]


@pytest.fixture
async def api(db_url):
    async with running(api_settings(db_url)) as (gateway, client):
        yield Api(client, gateway)


NOTHING = {"events": 0, "messages": 0, "citizens": 0, "cases": 0}


async def _problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM_JSON
    body = await response.json(content_type=PROBLEM_JSON)
    assert body["status"] == status
    assert body["type"].startswith("https://smsgw.example/problems/")
    assert body["title"]
    assert body["instance"] == response.url.path
    return body


# --- POST /api/v1/events -------------------------------------------------------------------------


async def test_signed_event_is_accepted_and_queues_one_message(api):
    response = await api.post(EVENT)
    assert response.status == 202
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["event_id"] == "cesac-000123"
    assert body["recipients"] == 1
    assert len(body["message_ids"]) == 1
    assert api.counts() == {"events": 1, "messages": 1, "citizens": 1, "cases": 1}
    [row] = api.messages()
    assert row["id"] == body["message_ids"][0]
    assert row["status"] == "queued"
    assert row["msisdn"] == "+525512345678"
    assert row["body"] == EXPECTED_BODY
    assert row["encoding"] == "gsm7"
    assert row["segments"] == 1
    assert row["priority"] == 2  # normal
    assert row["language"] == "es"
    assert row["expires_at"] - row["created_at"] == timedelta(hours=24)
    assert api.dispatcher_woken == 1


async def test_event_records_the_citizen_the_case_and_the_raw_payload(api):
    assert (await api.post(EVENT)).status == 202
    with api.db.engine.connect() as conn:
        citizen = conn.execute(select(citizens)).mappings().one()
        case = conn.execute(select(cases)).mappings().one()
        event = conn.execute(select(events)).mappings().one()
    assert (citizen["msisdn"], citizen["name"], citizen["opted_out"]) == ("+525512345678", "Ana", False)
    assert (case["folio"], case["citizen_id"], case["category"]) == (
        "MH-2026-004512",
        citizen["id"],
        "Fuga de agua",
    )
    assert (event["client_id"], event["event_key"], event["type"]) == (
        "cesac",
        "cesac-000123",
        "case.received",
    )
    assert event["payload"] == EVENT


async def test_english_citizen_gets_the_english_text(api):
    event = {**EVENT, "citizen": {"msisdn": "+52 55 1234 5678", "language": "en"}}
    assert (await api.post(event)).status == 202
    [row] = api.messages()
    assert row["language"] == "en"
    assert row["body"].startswith("Report MH-2026-004512 received on Sunday, November 29. ")


async def test_same_event_posted_again_answers_identically_and_writes_nothing(api):
    first = await api.post(EVENT)
    first_body = await first.json()
    before = api.counts()
    again = await api.post(EVENT)
    assert again.status == 202
    assert await again.json() == first_body
    assert api.counts() == before == {"events": 1, "messages": 1, "citizens": 1, "cases": 1}
    assert api.dispatcher_woken == 1  # the dispatcher is not woken for a duplicate


async def test_same_id_with_a_different_payload_is_409_and_changes_nothing(api):
    await api.post(EVENT)
    before = api.counts()
    changed = {**EVENT, "citizen": {"msisdn": "55 8765 4321"}}
    body = await _problem(await api.post(changed), 409)
    assert body["detail"].startswith("idempotency key reused with a different body")
    assert body["field"] == "id"
    assert api.counts() == before
    assert [r["msisdn"] for r in api.messages()] == ["+525512345678"]
    assert api.dispatcher_woken == 1


async def test_same_body_with_other_whitespace_and_key_order_answers_the_first_202(api):
    first = await (await api.post(EVENT)).json()
    reordered = dict(reversed(list(EVENT.items())))
    raw = json.dumps(reordered, indent=4).encode()
    again = await api.post_raw(raw)
    assert again.status == 202
    assert await again.json() == first
    assert api.counts()["events"] == 1


async def test_a_value_of_another_json_type_under_the_same_id_is_a_conflict(api):
    first = {**EVENT, "case": {**EVENT["case"], "progress": 1}}
    await api.post(first)
    changed = {**EVENT, "case": {**EVENT["case"], "progress": 1.0}}
    await _problem(await api.post(changed), 409)


async def test_concurrent_posts_of_one_id_with_two_bodies_accept_one_and_refuse_the_other(api):
    changed = {**EVENT, "citizen": {"msisdn": "55 8765 4321"}}
    responses = await asyncio.gather(*(api.post(e) for e in [EVENT, changed] * 5))
    statuses = [r.status for r in responses]
    assert sorted(set(statuses)) == [202, 409]
    accepted = {statuses[i] for i in range(0, 10, 2)}, {statuses[i] for i in range(1, 10, 2)}
    assert {202} in accepted and {409} in accepted  # one body wins every time, the other never
    assert api.counts()["messages"] == 1


async def test_twenty_concurrent_duplicates_create_one_event_and_one_message(api):
    responses = await asyncio.gather(*(api.post(EVENT) for _ in range(20)))
    assert [r.status for r in responses] == [202] * 20
    bodies = [await r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies)
    assert bodies[0]["recipients"] == 1 and len(bodies[0]["message_ids"]) == 1
    assert api.counts() == {"events": 1, "messages": 1, "citizens": 1, "cases": 1}
    assert api.dispatcher_woken == 1


async def test_distinct_events_for_the_same_citizen_share_citizen_and_case(api):
    first = await (await api.post(EVENT)).json()
    second = await (await api.post({**EVENT, "id": "cesac-000124"})).json()
    assert first["message_ids"] != second["message_ids"]
    assert api.counts() == {"events": 2, "messages": 2, "citizens": 1, "cases": 1}


async def test_opted_out_citizen_gets_no_message_but_the_event_is_recorded(api):
    assert (await api.post(EVENT)).status == 202
    with api.db.engine.begin() as conn:
        conn.execute(update(citizens).values(opted_out=True))
    response = await api.post({**EVENT, "id": "cesac-000124"})
    assert response.status == 202
    assert await response.json() == {
        "event_id": "cesac-000124",
        "message_ids": [],
        "recipients": 0,
        "skipped": [{"msisdn": "+52******5678", "reason": "opted_out"}],
    }
    again = await api.post({**EVENT, "id": "cesac-000124"})  # the repeat answers the same
    assert (await again.json())["skipped"] == [{"msisdn": "+52******5678", "reason": "opted_out"}]
    assert api.counts() == {"events": 2, "messages": 1, "citizens": 1, "cases": 1}
    assert api.dispatcher_woken == 1


# --- refusals: nothing written -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        pytest.param({"secret": "wrong"}, "signature does not match", id="bad-signature"),
        pytest.param({"client": "intruder"}, "unknown client", id="unknown-client"),
        pytest.param({"timestamp": int(time.time()) - 3600}, "timestamp", id="stale"),
        pytest.param({"timestamp": int(time.time()) + 3600}, "timestamp", id="future"),
        pytest.param({"client": None}, "X-Smsgw-Client", id="no-client-header"),
        pytest.param({"signature": "t=abc,v2=00"}, "t=<unix seconds>", id="malformed"),
    ],
)
async def test_unauthenticated_event_is_refused_with_401_and_nothing_written(api, kwargs, detail):
    body = await _problem(await api.post(EVENT, **kwargs), 401)
    assert detail in body["detail"]
    assert body["type"].endswith("/unauthorized")
    assert api.counts() == NOTHING
    assert api.dispatcher_woken == 0


async def test_unsigned_event_is_refused_with_401(api):
    response = await api.client.post("/api/v1/events", json=EVENT)
    body = await _problem(response, 401)
    assert "X-Smsgw-Client" in body["detail"]
    assert api.counts() == NOTHING


async def test_body_changed_after_signing_is_refused(api):
    raw = json.dumps(EVENT).encode()
    signature = sign(SECRET, "POST", "/api/v1/events", raw)
    tampered = raw.replace(b"55 1234 5678", b"55 8765 4321")
    body = await _problem(await api.post_raw(tampered, signature=signature), 401)
    assert body["detail"] == "signature does not match"
    assert api.counts() == NOTHING


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b'{"id": "x",}', b"\xff\xfe{}", b"NaN-ish"],
    ids=["broken", "empty", "trailing-comma", "not-utf8", "garbage"],
)
async def test_invalid_json_is_400(api, raw):
    body = await _problem(await api.post_raw(raw), 400)
    assert "not valid JSON" in body["detail"]
    assert api.counts() == NOTHING


async def test_missing_msisdn_is_422_naming_the_field_and_nothing_is_written(api):
    event = {**EVENT, "citizen": {"name": "Ana"}}
    body = await _problem(await api.post(event), 422)
    assert body["field"] == "citizen.msisdn"
    assert body["invalid_params"] == [{"name": "citizen.msisdn", "reason": "Field required"}]
    assert "citizen.msisdn" in body["detail"]
    assert api.counts() == NOTHING


async def test_invalid_msisdn_is_422_with_the_reason(api):
    event = {**EVENT, "citizen": {"msisdn": "123"}}
    body = await _problem(await api.post(event), 422)
    assert body["field"] == "citizen.msisdn"
    assert "10 digits" in body["invalid_params"][0]["reason"]
    assert api.counts() == NOTHING


async def test_several_invalid_fields_are_all_listed(api):
    event = {**EVENT, "occurred_at": "2026-11-29T10:00:00", "case": {"folio": "bad folio"}}
    body = await _problem(await api.post(event), 422)
    assert {p["name"] for p in body["invalid_params"]} == {"occurred_at", "case.folio"}
    assert api.counts() == NOTHING


@pytest.mark.parametrize(
    ("language", "reason"),
    [
        ("fr", "expected es or en (the languages with templates), got 'fr'"),
        ("pt-BR", "expected es or en (the languages with templates), got 'pt'"),
        ("español", "expected a language such as es or es-MX, got 'español'"),
    ],
)
async def test_a_language_without_templates_is_422_naming_it_and_nothing_is_written(api, language, reason):
    event = {**EVENT, "citizen": {**EVENT["citizen"], "language": language}}
    body = await _problem(await api.post(event), 422)
    assert body["invalid_params"] == [{"name": "citizen.language", "reason": reason}]
    assert api.counts() == NOTHING


async def test_a_language_tag_with_a_region_is_its_language(api):
    event = {**EVENT, "citizen": {**EVENT["citizen"], "language": "EN-us"}}
    assert (await api.post(event)).status == 202
    (message,) = api.messages()
    assert message["language"] == "en" and message["body"].startswith("Report MH-2026-004512 received on")
    with api.db.engine.connect() as conn:
        assert conn.execute(select(citizens.c.language)).scalar_one() == "en"


async def test_unsupported_type_is_422_on_type(api):
    body = await _problem(await api.post({**EVENT, "type": "case.exploded"}), 422)
    assert body["field"] == "type"
    assert api.counts() == NOTHING


async def test_json_array_body_is_422(api):
    body = await _problem(await api.post_raw(b"[1, 2]"), 422)
    assert body["invalid_params"][0]["reason"] == "the body must be a JSON object"
    assert api.counts() == NOTHING


async def test_body_over_64_kib_is_413_and_nothing_is_written(api):
    event = {**EVENT, "padding": "x" * 65536}
    body = await _problem(await api.post(event), 413)
    assert body["type"].endswith("/too-large")
    assert "65536" in body["detail"]
    assert api.counts() == NOTHING


async def test_body_of_exactly_64_kib_is_accepted(api):
    raw = json.dumps({**EVENT, "padding": ""}).encode()
    raw = json.dumps({**EVENT, "padding": "x" * (65536 - len(raw))}).encode()
    assert len(raw) == 65536
    response = await api.post_raw(raw)
    assert response.status == 202
    assert api.counts()["messages"] == 1


# --- read_body: a body that arrives in several pieces --------------------------------------------


def _request_with_body_in_pieces(pieces: list[bytes]):
    loop = asyncio.get_running_loop()
    protocol = mock.Mock(_reading_paused=False)
    stream = StreamReader(protocol, 2**16, loop=loop)
    stream.feed_data(pieces[0])

    def feed_rest() -> None:
        for piece in pieces[1:]:
            stream.feed_data(piece)
        stream.feed_eof()

    loop.call_soon(feed_rest)
    length = sum(len(p) for p in pieces)
    return make_mocked_request(
        "POST", "/api/v1/events", headers={"Content-Length": str(length)}, payload=stream
    )


async def test_read_body_of_one_piece():
    request = _request_with_body_in_pieces([b'{"id": "x"}'])
    assert await read_body(request, 65536) == b'{"id": "x"}'


async def test_read_body_of_a_body_arriving_in_two_pieces_is_complete():
    request = _request_with_body_in_pieces([b'{"id": ', b'"x"}'])
    assert await read_body(request, 65536) == b'{"id": "x"}'


# --- error responses -----------------------------------------------------------------------------


async def test_unknown_route_is_404_problem_json(api):
    body = await _problem(await api.client.get("/api/v1/nothing-here"), 404)
    assert body["title"] == "Not Found"


async def test_wrong_method_is_405_problem_json(api):
    await _problem(await api.client.get("/api/v1/events"), 405)


# --- GET /api/v1/messages/{id} -------------------------------------------------------------------


async def test_get_message_shows_the_queued_message_with_masked_recipient(api):
    [message_id] = (await (await api.post(EVENT)).json())["message_ids"]
    response = await api.get_signed(f"/api/v1/messages/{message_id}")
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["id"] == message_id
    assert body["to"] == "+52******5678"
    assert "1234" not in json.dumps(body)
    assert body["text"] == EXPECTED_BODY
    assert body["language"] == "es"
    assert body["encoding"] == "gsm7"
    assert body["segments"] == 1
    assert body["priority"] == "normal"
    assert body["status"] == "queued"
    assert body["carrier"] is None
    assert body["smsc_message_id"] is None
    assert body["attempts"] == 0
    assert body["error"] is None
    assert body["parts"] == []
    assert body["created_at"].endswith("Z")
    assert body["submitted_at"] is None and body["done_at"] is None
    assert [h["status"] for h in body["history"]] == ["queued"]
    assert body["history"][0]["at"] == body["created_at"]


async def test_get_unknown_message_is_404_problem(api):
    body = await _problem(await api.get_signed("/api/v1/messages/424242"), 404)
    assert "424242" in body["detail"]


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5", "1e3"])
async def test_get_message_with_a_non_integer_id_is_404_problem(api, raw):
    body = await _problem(await api.get_signed(f"/api/v1/messages/{raw}"), 404)
    assert body["field"] == "id"


async def test_get_message_with_an_id_out_of_the_integer_range_is_404(api):
    await _problem(await api.get_signed("/api/v1/messages/99999999999999999999"), 404)


async def test_get_message_with_a_superscript_digit_id_is_404(api):
    await _problem(await api.get_signed("/api/v1/messages/%C2%B2"), 404)


async def test_unsigned_get_message_is_401(api):
    [message_id] = (await (await api.post(EVENT)).json())["message_ids"]
    body = await _problem(await api.client.get(f"/api/v1/messages/{message_id}"), 401)
    assert "missing" in body["detail"]


async def test_get_message_with_a_wrong_signature_is_401(api):
    [message_id] = (await (await api.post(EVENT)).json())["message_ids"]
    body = await _problem(await api.get_signed(f"/api/v1/messages/{message_id}", secret="nope"), 401)
    assert body["detail"] == "signature does not match"


# --- health --------------------------------------------------------------------------------------


async def test_healthz(api):
    response = await api.client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_of_an_api_process_needs_the_database_only(api):
    response = await api.client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "checks": {"database": "ok"}}


async def test_readyz_of_a_dispatch_process_without_a_bound_carrier_is_503(db_url, unused_tcp_port):
    carrier = {
        "name": "telcel",
        "port": unused_tcp_port,  # nothing listens: never bound
        "system_id": "smsgw",
        "password_env": "SMSGW_TEST_SMSC_PASSWORD",
    }
    async with running(api_settings(db_url, carriers=[carrier]), Role.DISPATCH) as (_, client):
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["status"] == "not ready"
        assert body["checks"] == {
            "database": "ok",
            "carriers": "no carrier bound",
            "status_writer": "ok",
            "binds": "telcel: bind 0 not bound",  # it holds the slot, the SMSC does not answer
        }
        assert (await client.get("/api/v1/openapi.json")).status == 404  # no CRM API in this role


async def test_readyz_with_a_broken_database_is_503(api, monkeypatch):
    async def broken(fn, *args):
        raise ConnectionError("database down")

    monkeypatch.setattr(api.db, "run", broken)
    response = await api.client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["database"] == "error: ConnectionError"
