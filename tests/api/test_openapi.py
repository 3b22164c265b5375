"""The OpenAPI document says what the server does: it is generated from the models the server
validates and answers with, and the server's answers are checked against it here, request by
request, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from sqlalchemy import update

from gateway import clock
from gateway.domain.catalog import EVENT_KINDS
from gateway.http.api.messages import MessageQuery
from gateway.http.api.openapi import Document
from gateway.http.api.schemas import EventAccepted
from gateway.http.app import API_OPERATIONS, OPS_OPERATIONS
from gateway.http.operations import add_routes
from gateway.http.signing import Signer
from gateway.store import subscriptions
from gateway.store.citizens import upsert_citizen
from gateway.store.models import messages
from gateway.store.zones import ids_of
from tests.api_gateway import api_settings, running

SECRET = "s3cret"


class Client:
    def __init__(self, http, gateway):
        self.http = http
        self.gateway = gateway
        self.signer = Signer("cesac", SECRET)
        self.doc: dict = {}

    async def send(self, method: str, path: str, data: dict | None = None):
        body = json.dumps(data).encode() if data is not None else b""
        headers = {"Content-Type": "application/json", **self.signer.headers(method, path, body)}
        async with self.http.request(method, path, data=body, headers=headers) as response:
            return response.status, response.content_type, await response.json()

    def subscribe(self, msisdn: str, topic: str, zone: str) -> None:
        zones = self.gateway.policy.zones.match(zone, partial=False)

        def work(conn):
            citizen_id, _, _ = upsert_citizen(conn, msisdn, "es", None, clock.utcnow())
            subscriptions.subscribe(conn, citizen_id, topic, ids_of(conn, zones), clock.utcnow())

        self.gateway.db.transaction(work)

    def schema(self, path: str, method: str, status: int, media_type: str) -> Draft202012Validator:
        reply = self.doc["paths"][path][method]["responses"][str(status)]
        schema = reply["content"][media_type]["schema"]
        return Draft202012Validator({**schema, "components": self.doc["components"]})

    async def check(
        self, method: str, template: str, path: str, data: dict | None = None
    ) -> tuple[int, dict]:
        """Send the request; its answer must match what the document says of that status."""
        status, media_type, body = await self.send(method, path, data)
        errors = [
            e.message for e in self.schema(template, method.lower(), status, media_type).iter_errors(body)
        ]
        assert errors == [], (method, path, status, body)
        return status, body


@pytest.fixture
async def client(db_url):
    async with running(api_settings(db_url)) as (gateway, http):
        api = Client(http, gateway)
        async with http.get("/api/v1/openapi.json") as response:
            api.doc = await response.json()
        yield api


def case(event_id: str, **changes) -> dict:
    event = {
        "id": event_id,
        "type": "case.received",
        "case": {"folio": "MH-1"},
        "citizen": {"msisdn": "55 1234 5678"},
    }
    return {**event, **changes}


WATER = {
    "id": "agua-1",
    "type": "water.outage",
    "area": {"zones": ["Anzures"]},
    "notice": {"starts_at": "2030-12-01T08:00:00-06:00", "ends_at": "2030-12-01T18:00:00-06:00"},
}


async def test_every_answer_matches_the_document(client):
    client.subscribe("+525511110001", "AGUA", "Anzures")
    events, one, retry = "/api/v1/events", "/api/v1/messages/{id}", "/api/v1/messages/{id}/retry"
    status, accepted = await client.check("POST", events, events, case("c-1"))
    assert status == 202
    (message_id,) = accepted["message_ids"]
    assert await client.check("POST", events, events, case("c-1")) == (202, accepted)
    status, water = await client.check("POST", events, events, WATER)
    assert status == 202 and water["recipients"] == 1
    broadcast = f"/api/v1/broadcasts/{water['broadcast_id']}"

    status, message = await client.check("GET", one, f"/api/v1/messages/{message_id}")
    assert message["to"] == "+52******5678" and message["event_id"] == "c-1" and message["history"]
    assert message["created_at"].endswith("Z")
    status, page = await client.check(
        "GET", "/api/v1/messages", "/api/v1/messages?status=queued,held&limit=1"
    )
    assert [m["id"] for m in page["items"]] == [message_id] and "history" not in page["items"][0]
    status, refused = await client.check("GET", "/api/v1/messages", "/api/v1/messages?limit=0")
    assert status == 400 and refused["field"] == "limit"
    assert (await client.check("GET", one, "/api/v1/messages/424242"))[0] == 404
    assert (await client.check("POST", retry, f"/api/v1/messages/{message_id}/retry"))[0] == 409
    with client.gateway.db.engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == message_id).values(status="failed"))
    assert (await client.check("POST", retry, f"/api/v1/messages/{message_id}/retry"))[0] == 200

    status, progress = await client.check("GET", "/api/v1/broadcasts/{id}", broadcast)
    assert progress["zones"] == ["Anzures"] and progress["texts"]["es"]["encoding"] == "gsm7"
    cancel = "/api/v1/broadcasts/{id}/cancel"
    status, cancelled = await client.check("POST", cancel, f"{broadcast}/cancel")
    assert status == 200 and cancelled["previous_status"] == "pending"
    assert (await client.check("POST", cancel, f"{broadcast}/cancel"))[0] == 409

    status, stats = await client.check("GET", "/api/v1/stats", "/api/v1/stats")
    assert stats["messages"]["total"] == 1 and stats["broadcasts_in_progress"] == 0
    status, invalid = await client.check("POST", events, events, case("c-2", id=""))
    assert status == 422 and invalid["field"] == "id"
    for path in ("/healthz", "/readyz"):
        assert (await client.check("GET", path, path))[0] == 200


async def test_the_subscription_answers_match_the_document(client):
    subs = "/api/v1/subscriptions"
    wanted = {"msisdn": "55 1234 5678", "topic": "AGUA", "zones": ["11590"]}
    status, added = await client.check("POST", subs, subs, wanted)
    assert status == 201 and added["added"] == 1
    assert (await client.check("POST", subs, subs, wanted))[0] == 200
    status, view = await client.check("GET", subs, f"{subs}?msisdn=5512345678")
    assert status == 200 and [s["topic"] for s in view["subscriptions"]] == ["AGUA"]
    status, refused = await client.check("GET", subs, f"{subs}?msisdn=5512345678&color=red")
    assert status == 400 and refused["field"] == "color"
    status, refused = await client.check("POST", subs, subs, {**wanted, "zones": ["Atlantis"]})
    assert status == 422 and refused["field"].startswith("zones")
    status, removed = await client.check("DELETE", subs, f"{subs}?msisdn=5512345678&topic=AGUA")
    assert status == 200 and removed["removed"] == 1
    status, stopped = await client.check("DELETE", subs, subs, {"msisdn": "5512345678"})
    assert status == 200 and stopped["opted_out"] is True
    status, refused = await client.check("POST", subs, subs, wanted)
    assert status == 409 and refused["field"] == "consent"


SUBSCRIPTION_SCHEMA_AND_SERVER_AGREE = [
    {"msisdn": "55 1234 5678"},
    {"msisdn": "55 1234 5678", "topic": "agua", "zones": ["Anzures"], "language": "en"},
    {"msisdn": ""},
    {"msisdn": 5512345678},
    {"topic": "AGUA"},
    {"msisdn": "55 1234 5678", "color": "red"},
    {"msisdn": "55 1234 5678", "zones": "Anzures"},
    {"msisdn": "55 1234 5678", "consent": "maybe"},
]


@pytest.mark.parametrize("body", SUBSCRIPTION_SCHEMA_AND_SERVER_AGREE, ids=str)
async def test_the_subscription_schema_refuses_what_the_server_refuses(client, body):
    request = client.doc["paths"]["/api/v1/subscriptions"]["post"]["requestBody"]
    validator = Draft202012Validator(
        {**request["content"]["application/json"]["schema"], "components": client.doc["components"]}
    )
    status, _, answer = await client.send("POST", "/api/v1/subscriptions", body)
    assert status in (200, 201, 400, 422), answer
    if not validator.is_valid(body):
        assert status in (400, 422), answer  # the schema is stricter on semantics (zones, number form)
    if status in (200, 201):
        assert validator.is_valid(body), [e.message for e in validator.iter_errors(body)]


SCHEMA_AND_SERVER_AGREE = [
    case("ok-1"),
    WATER,
    case("ok-2", priority="high", occurred_at="2030-12-01T08:00:00-06:00"),
    case(""),  # the id may not be empty
    case("x-1", citizen={"msisdn": ""}),
    case("x-2", citizen={"msisdn": "123"}),
    case("x-3", citizen={"msisdn": "no number"}),
    case("x-4", case={"folio": ""}),
    case("x-5", case=None),
    case("x-6", citizen=None),
    case("x-7", type="case.unknown"),
    case("x-8", priority="emergency"),  # reserved for emergencies
    case("x-9", priority="urgent"),
    case("x-10", type="case.status_changed"),  # needs case.status
    case("x-11", type="appointment.scheduled", case={"folio": "MH-1", "appointment": {"place": "x"}}),
    case("x-12", case={"folio": "MH-1", "progress": 101}),
    {"id": "x-13", "type": "traffic.alert", "area": {"zones": ["Anzures"]}, "notice": {"text": ""}},
    {**WATER, "id": "x-14", "area": {"zones": []}},
    {"id": "x-15", "type": "emergency.alert", "priority": "emergency", "notice": {"text": "Sismo"}},
    {"type": "case.received"},
    case("x-16", id=7),
]


@pytest.mark.parametrize("event", SCHEMA_AND_SERVER_AGREE, ids=lambda e: str(e.get("id", "no-id")))
async def test_the_case_event_schema_accepts_what_the_server_accepts(client, event):
    body = client.doc["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    validator = Draft202012Validator({**body["schema"], "components": client.doc["components"]})
    status, _, answer = await client.send("POST", "/api/v1/events", event)
    assert status in (202, 422), answer
    assert validator.is_valid(event) == (status == 202), (
        answer,
        [e.message for e in validator.iter_errors(event)],
    )


def test_the_document_is_generated_from_the_models_the_server_validates_with():
    app = web.Application()
    add_routes(app, (*OPS_OPERATIONS, *API_OPERATIONS))
    doc = Document((*OPS_OPERATIONS, *API_OPERATIONS)).build(app)
    listing = doc["paths"]["/api/v1/messages"]["get"]
    assert [p["name"] for p in listing["parameters"]] == list(MessageQuery.model_fields)
    assert "MessageQuery" not in doc["components"]["schemas"]  # it is the parameters
    event = doc["components"]["schemas"]["CaseEvent"]
    assert event["properties"]["type"]["enum"] == list(EVENT_KINDS)
    accepted = doc["components"]["schemas"]["EventAccepted"]
    assert set(accepted["properties"]) == set(EventAccepted.model_fields)
    assert accepted["properties"]["broadcast_id"] == {
        "type": "integer",
        "description": "broadcasts only: fanned out after this answer",
    }  # left out of case events' answers, never null
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"] != "(not described)", (method, path)
