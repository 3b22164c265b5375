"""The notices API over HTTP on SQLite and PostgreSQL: broadcasts (202, idempotency, progress,
cancel), the message list with filters and keyset pagination, retry, stats and the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, select, update

from gateway import clock
from gateway.http.api.openapi import DOCUMENT, routes_of
from gateway.http.signing import Signer
from gateway.roles import Gateway
from gateway.signals import Wakeup
from gateway.store import subscriptions
from gateway.store.citizens import upsert_citizen
from gateway.store.db import Database
from gateway.store.models import broadcasts, callbacks, citizens, events, message_status_history, messages
from gateway.store.zones import ids_of
from scheduler.fanout import FanoutService
from tests.api_gateway import api_settings, running

CITY = ZoneInfo("America/Mexico_City")
SECRET = "s3cret"
PROBLEM_JSON = "application/problem+json"


@dataclass
class Api:
    client: aiohttp.ClientSession
    gateway: Gateway
    signer: Signer = field(default_factory=lambda: Signer("cesac", SECRET))
    # the dispatch role's fan-out, run by the tests when they want it
    fanout: FanoutService = field(init=False)

    def __post_init__(self) -> None:
        self.fanout = FanoutService(self.db, Wakeup("test"), lambda: None, chunk=100)

    @property
    def db(self) -> Database:
        return self.gateway.db

    def woken(self) -> tuple[int, int]:
        """How many times the intake woke (the dispatcher, the fan-out)."""
        signals = self.gateway.signals
        return signals.outbox.sets, signals.broadcasts.sets

    def _headers(
        self, method: str, path: str, body: bytes, client: str = "cesac", secret: str = SECRET
    ) -> dict:
        signed = self.signer.headers(method, path, body, client_id=client, secret=secret)
        return {"Content-Type": "application/json", **signed}

    async def post(self, path: str, data: dict | None = None, **kwargs):
        body = json.dumps(data).encode() if data is not None else b""
        return await self.client.post(path, data=body, headers=self._headers("POST", path, body, **kwargs))

    async def get(self, path: str, **kwargs):
        return await self.client.get(path, headers=self._headers("GET", path, b"", **kwargs))

    async def json(self, response, status: int = 200):
        text = await response.text()
        assert response.status == status, text
        return json.loads(text)

    def count(self, table) -> int:
        with self.db.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()

    def subscribe(self, msisdn: str, topic: str, zones: list[str], opted_out: bool = False) -> int:
        policy = self.gateway.policy

        def work(conn):
            citizen_id, _, _ = upsert_citizen(conn, msisdn, "es", None, clock.utcnow())
            wanted = [z for name in zones for z in policy.zones.match(name, partial=False)]
            subscriptions.subscribe(conn, citizen_id, topic, ids_of(conn, wanted), clock.utcnow())
            if opted_out:
                conn.execute(update(citizens).where(citizens.c.id == citizen_id).values(opted_out=True))
            return citizen_id

        return self.db.transaction(work)


def _settings(db_url: str, **sections):
    return api_settings(db_url, {"cesac": "http://crm.test/status"}, **sections)


@pytest.fixture
async def api(db_url):
    async with running(_settings(db_url)) as (gateway, client):
        yield Api(client, gateway)


def water(event_id: str = "agua-1", zones=("Anzures",)) -> dict:
    return {
        "id": event_id,
        "type": "water.outage",
        "area": {"zones": list(zones)},
        "notice": {"starts_at": "2030-12-01T08:00:00-06:00", "ends_at": "2030-12-01T18:00:00-06:00"},
    }


def case(event_id: str, msisdn: str = "55 1234 5678", folio: str = "MH-1") -> dict:
    return {"id": event_id, "type": "case.received", "case": {"folio": folio}, "citizen": {"msisdn": msisdn}}


# --- broadcasts ---------------------------------------------------------------------------------


async def test_a_broadcast_answers_202_with_its_id_and_recipient_count(api):
    for n in range(3):
        api.subscribe(f"+52551111000{n}", "AGUA", ["Anzures"])
    body = await api.json(await api.post("/api/v1/events", water()), 202)
    assert body == {
        "event_id": "agua-1",
        "broadcast_id": body["broadcast_id"],
        "message_ids": [],
        "recipients": 3,
        "status": "queued",
    }
    assert api.woken() == (0, 1)  # the fan-out, not the dispatcher
    assert api.count(messages) == 0  # the fan-out runs after the answer
    assert await api.fanout.run_until_idle() == 3
    view = await api.json(await api.get(f"/api/v1/broadcasts/{body['broadcast_id']}"))
    assert (view["status"], view["recipients"], view["queued"], view["messages"]) == (
        "done",
        3,
        3,
        {"queued": 3},
    )
    assert view["zones"] == ["Anzures"] and view["topic"] == "AGUA" and view["priority"] == "high"
    assert view["texts"]["es"]["body"].startswith("Corte de agua en Anzures")
    assert (
        await api.get(f"/api/v1/broadcasts/{body['broadcast_id']}", client="other", secret="other-secret")
    ).status == 404


async def test_concurrent_duplicate_broadcast_posts_create_one_broadcast(api):
    api.subscribe("+525511110001", "AGUA", ["Anzures"])
    responses = await asyncio.gather(*(api.post("/api/v1/events", water()) for _ in range(20)))
    bodies = [await api.json(r, 202) for r in responses]
    assert all(b == bodies[0] for b in bodies)
    assert api.count(events) == 1 and api.count(broadcasts) == 1
    await api.fanout.run_until_idle()
    assert api.count(messages) == 1


async def test_a_broadcast_to_an_unknown_zone_is_refused_and_writes_nothing(api):
    response = await api.post("/api/v1/events", water(zones=["Anzures", "Narvarte"]))
    body = await api.json(response, 422)
    assert response.content_type == PROBLEM_JSON
    assert body["field"] == "area.zones[1]" and "Narvarte" in body["detail"]
    assert api.count(events) == 0 and api.count(broadcasts) == 0


async def test_misspelt_zones_are_refused_with_suggestions(api):
    response = await api.post("/api/v1/events", water(zones=["Polancoo", "Anzurez", "Granad"]))
    body = await api.json(response, 422)
    assert [(p["name"], p["reason"].rsplit("; ", 1)[1]) for p in body["invalid_params"]] == [
        ("area.zones[0]", "did you mean Polanco?"),
        ("area.zones[1]", "did you mean Anzures?"),
        ("area.zones[2]", "did you mean Granada?"),
    ]
    assert api.count(events) == 0 and api.count(broadcasts) == 0


async def test_a_repost_answers_as_the_first_even_when_it_would_no_longer_pass(api, monkeypatch):
    first = await api.json(await api.post("/api/v1/events", water()), 202)
    later = clock.utcnow() + timedelta(days=3650)  # the cut is over by then
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    assert await api.json(await api.post("/api/v1/events", water()), 202) == first


async def test_a_repost_with_another_body_is_409_even_when_it_would_no_longer_pass(api, monkeypatch):
    await api.json(await api.post("/api/v1/events", water()), 202)
    later = clock.utcnow() + timedelta(days=3650)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    problem = await api.json(await api.post("/api/v1/events", water(zones=["Anzures", "Granada"])), 409)
    assert problem["field"] == "id" and api.count(broadcasts) == 1


async def test_a_broadcast_reposted_with_other_zones_is_409(api):
    await api.json(await api.post("/api/v1/events", water()), 202)
    problem = await api.json(await api.post("/api/v1/events", water(zones=["Granada"])), 409)
    assert problem["detail"].startswith("idempotency key reused with a different body")
    assert api.count(broadcasts) == 1 and api.count(events) == 1


async def test_cancel_a_broadcast(api):
    for n in range(5):
        api.subscribe(f"+52551111000{n}", "AGUA", ["Anzures"])
    broadcast_id = (await api.json(await api.post("/api/v1/events", water()), 202))["broadcast_id"]
    await api.fanout.run_until_idle()
    other = await api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel", client="other", secret="other-secret")
    assert other.status == 404
    body = await api.json(await api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel"))
    assert body == {"id": broadcast_id, "status": "cancelled", "previous_status": "done", "cancelled": 5}
    view = await api.json(await api.get(f"/api/v1/broadcasts/{broadcast_id}"))
    assert view["status"] == "cancelled" and view["messages"] == {"cancelled": 5}
    with api.db.engine.connect() as conn:
        row = conn.execute(select(callbacks)).mappings().one()
    assert row["kind"] == "broadcast.cancelled" and row["payload"]["cancelled"] == 5
    assert (await api.post("/api/v1/broadcasts/999/cancel")).status == 404
    assert (await api.post("/api/v1/broadcasts/abc/cancel")).status == 404


async def test_a_finished_broadcast_cannot_be_cancelled_and_nothing_changes(api):
    for n in range(3):
        api.subscribe(f"+52551112000{n}", "AGUA", ["Anzures"])
    broadcast_id = (await api.json(await api.post("/api/v1/events", water()), 202))["broadcast_id"]
    await api.fanout.run_until_idle()
    with api.db.engine.begin() as conn:  # every message has left and ended
        conn.execute(update(messages).values(status="delivered"))
    before = await api.json(await api.get(f"/api/v1/broadcasts/{broadcast_id}"))
    response = await api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel")
    body = await api.json(response, 409)
    assert response.content_type == PROBLEM_JSON
    assert body["field"] == "id" and "is finished (done)" in body["detail"]
    assert await api.json(await api.get(f"/api/v1/broadcasts/{broadcast_id}")) == before
    assert before["status"] == "done" and before["messages"] == {"delivered": 3}
    assert api.count(callbacks) == 0

    nobody = await api.json(await api.post("/api/v1/events", water("agua-2", zones=["Tacubaya"])), 202)
    assert nobody["recipients"] == 0  # done when accepted
    response = await api.post(f"/api/v1/broadcasts/{nobody['broadcast_id']}/cancel")
    assert (await api.json(response, 409))["type"].endswith("/not-cancellable")


async def test_a_cancelled_broadcast_cannot_be_cancelled_again(api):
    api.subscribe("+525511130000", "AGUA", ["Anzures"])
    broadcast_id = (await api.json(await api.post("/api/v1/events", water()), 202))["broadcast_id"]
    assert (await api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel")).status == 200  # still pending
    again = await api.json(await api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel"), 409)
    assert again["detail"] == f"broadcast {broadcast_id} is already cancelled"
    assert api.count(callbacks) == 1  # the first cancel's broadcast.cancelled, no second one
    await api.fanout.run_until_idle()
    assert api.count(messages) == 0  # cancelled before its fan-out


# --- GET /api/v1/messages -----------------------------------------------------------------------


async def _seed(api) -> dict[str, list[int]]:
    ids = {"ana": [], "luis": []}
    for n in range(3):
        body = await api.json(await api.post("/api/v1/events", case(f"a-{n}", folio=f"MH-{n}")), 202)
        ids["ana"] += body["message_ids"]
    for n in range(2):
        body = await api.json(
            await api.post("/api/v1/events", case(f"l-{n}", "+52 1 55 8765 4321", f"LU-{n}")), 202
        )
        ids["luis"] += body["message_ids"]
    return ids


async def test_messages_are_listed_newest_first_with_filters(api):
    ids = await _seed(api)
    page = await api.json(await api.get("/api/v1/messages"))
    assert [m["id"] for m in page["items"]] == sorted(ids["ana"] + ids["luis"], reverse=True)
    assert page["next_cursor"] is None and page["limit"] == 50
    first = page["items"][-1]
    assert first["to"] == "+52******5678" and first["event_id"] == "a-0" and first["status"] == "queued"
    assert "history" not in first and first["text"].startswith("Su reporte")

    by_number = await api.json(await api.get("/api/v1/messages?msisdn=045%2055%208765%204321"))
    assert [m["id"] for m in by_number["items"]] == sorted(ids["luis"], reverse=True)
    by_event = await api.json(await api.get("/api/v1/messages?event_id=a-1"))
    assert [m["id"] for m in by_event["items"]] == [ids["ana"][1]]
    with api.db.engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == ids["ana"][0]).values(status="failed"))
    failed = await api.json(await api.get("/api/v1/messages?status=failed,expired"))
    assert [m["id"] for m in failed["items"]] == [ids["ana"][0]]
    since = (clock.utcnow() - timedelta(minutes=5)).isoformat() + "Z"
    recent = await api.json(await api.get(f"/api/v1/messages?since={since}"))
    assert len(recent["items"]) == 5
    future = await api.json(await api.get("/api/v1/messages?since=2099-01-01T00:00:00-06:00"))
    assert future["items"] == []
    other = await api.json(await api.get("/api/v1/messages", client="other", secret="other-secret"))
    assert other["items"] == []  # a CRM sees its own messages only


async def test_keyset_pagination_walks_every_message_once(api):
    ids = await _seed(api)
    seen, cursor = [], None
    while True:
        path = "/api/v1/messages?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await api.json(await api.get(path))
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids["ana"] + ids["luis"], reverse=True)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=sent", "status"),
        ("msisdn=123", "msisdn"),
        ("since=yesterday", "since"),
        ("since=2026-11-29T10:00:00", "since"),
        ("since=0001-01-01T00:00:00%2B14:00", "since"),  # before the year 1 in UTC: was a 500
        ("since=9999-12-31T23:59:59-14:00", "since"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=x", "cursor"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_filters_are_400_naming_the_parameter(api, query, field):
    response = await api.get(f"/api/v1/messages?{query}")
    body = await api.json(response, 400)
    assert response.content_type == PROBLEM_JSON and body["field"] == field


async def test_listing_needs_a_signature(api):
    response = await api.client.get("/api/v1/messages")
    assert response.status == 401 and response.content_type == PROBLEM_JSON


# --- retry --------------------------------------------------------------------------------------


async def test_retry_a_failed_message(api):
    (message_id,) = (await api.json(await api.post("/api/v1/events", case("a-1")), 202))["message_ids"]
    conflict = await api.json(await api.post(f"/api/v1/messages/{message_id}/retry"), 409)
    assert conflict["field"] == "id" and "queued" in conflict["detail"]
    with api.db.engine.begin() as conn:
        conn.execute(
            update(messages)
            .where(messages.c.id == message_id)
            .values(status="failed", attempts=10, error_code=11, error_text="ESME_RINVDSTADR")
        )
    before = api.woken()
    body = await api.json(await api.post(f"/api/v1/messages/{message_id}/retry"))
    assert body == {"id": message_id, "status": "queued", "previous_status": "failed"}
    assert api.woken() == (before[0] + 1, before[1])
    message = await api.json(await api.get(f"/api/v1/messages/{message_id}"))
    # every submission stays counted; the retry budget counts from here
    assert (message["status"], message["attempts"], message["error"]) == ("queued", 10, None)
    assert message["history"][-1]["detail"] == "retried by an operator"
    other = await api.post(f"/api/v1/messages/{message_id}/retry", client="other", secret="other-secret")
    assert other.status == 404
    assert (await api.post("/api/v1/messages/424242/retry")).status == 404


async def test_retry_is_refused_for_an_opted_out_citizen(api):
    (message_id,) = (await api.json(await api.post("/api/v1/events", case("a-1")), 202))["message_ids"]
    with api.db.engine.begin() as conn:
        conn.execute(update(messages).values(status="expired"))
        conn.execute(update(citizens).values(opted_out=True))
    body = await api.json(await api.post(f"/api/v1/messages/{message_id}/retry"), 409)
    assert "opted out" in body["detail"]
    with api.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(message_status_history)).scalar_one() == 1


# --- stats --------------------------------------------------------------------------------------


async def test_stats(api):
    await _seed(api)
    api.subscribe("+525511110001", "AGUA", ["Anzures"])
    await api.post("/api/v1/events", water())
    with api.db.engine.begin() as conn:
        first = conn.execute(select(func.min(messages.c.id))).scalar_one()
        conn.execute(
            update(messages)
            .where(messages.c.id == first)
            .values(status="delivered", submitted_at=clock.utcnow(), done_at=clock.utcnow())
        )
    stats = await api.json(await api.get("/api/v1/stats"))
    assert stats["messages"]["total"] == 5
    assert stats["messages"]["by_status"]["queued"] == 4 and stats["messages"]["by_status"]["delivered"] == 1
    assert stats["queue"]["depth"] == 4 and stats["queue"]["by_priority"]["normal"] == {
        "queued": 4,
        "held": 0,
    }
    assert stats["last_hour"]["queued"] == 5 and stats["last_hour"]["delivered"] == 1
    assert stats["broadcasts_in_progress"] == 1
    await api.fanout.run_until_idle()
    stats = await api.json(await api.get("/api/v1/stats"))
    assert stats["queue"]["by_priority"]["high"]["queued"] == 1 and stats["broadcasts_in_progress"] == 0
    assert (await api.client.get("/api/v1/stats")).status == 401


# --- OpenAPI --------------------------------------------------------------------------------------


async def test_openapi_describes_every_route_and_nothing_else(api):
    response = await api.client.get("/api/v1/openapi.json")  # public, unsigned
    doc = await api.json(response)
    assert doc["openapi"].startswith("3.1")
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == routes_of(api.gateway.app)
    assert routes_of(api.gateway.app) <= api.gateway.app[DOCUMENT].described, (
        "a route has no Operation declared (gateway/http/operations.py)"
    )
    schemes = doc["components"]["securitySchemes"]
    assert {(s["in"], s["name"]) for s in schemes.values() if s["type"] == "apiKey"} == {
        ("header", "X-Smsgw-Client"),
        ("header", "X-Smsgw-Signature"),
        ("cookie", "smsgw_session"),  # operators
    }
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (method, path)
            signed = op["security"] == [{"client": [], "signature": []}]
            assert signed == (path.startswith("/api/v1/") and path != "/api/v1/openapi.json"), (method, path)
            if signed:
                assert op["responses"]["401"]["content"] == {
                    PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                }
            for code, answer in op["responses"].items():
                if code.startswith(("4", "5")) and path.startswith("/api/"):
                    assert PROBLEM_JSON in answer["content"], (method, path, code)
            text = json.dumps(op)
            for ref in set(part.split('"')[0] for part in text.split("#/components/schemas/")[1:]):
                assert ref in doc["components"]["schemas"], ref
    event = doc["paths"]["/api/v1/events"]["post"]
    assert set(event["responses"]) >= {"202", "401", "422"}
    assert "water.outage" in doc["components"]["schemas"]["CaseEvent"]["properties"]["type"]["enum"]


# --- quiet hours under a controlled clock ---------------------------------------------------------


async def test_quiet_hours_hold_all_but_emergencies_until_morning(db_url, monkeypatch):
    async with running(_settings(db_url, quiet_hours={"enabled": True})) as (gateway, client):
        await _quiet_hours(Api(client, gateway), monkeypatch)


async def _quiet_hours(api: Api, monkeypatch) -> None:
    from datetime import datetime

    from scheduler.quiet_hours import QuietHoursRelease

    now = {"t": datetime(2030, 12, 1, 5, 0)}  # 23:00 in the city
    monkeypatch.setattr(clock, "utcnow", lambda: now["t"])
    api.subscribe("+525599990001", "EMERGENCIA", ["Anzures"])
    first = await api.json(await api.post("/api/v1/events", case("a-1")), 202)
    second = await api.json(await api.post("/api/v1/events", case("a-2", folio="MH-2")), 202)
    alert = {
        "id": "s-1",
        "type": "emergency.alert",
        "area": {"zones": ["Anzures"]},
        "notice": {"text": "Sismo"},
    }
    emergency = await api.json(await api.post("/api/v1/events", alert), 202)
    assert emergency["status"] == "queued", emergency
    assert await api.fanout.run_until_idle() == 1
    held = await api.json(await api.get("/api/v1/messages?status=held"))
    assert [m["id"] for m in held["items"]] == second["message_ids"] + first["message_ids"]
    queued = await api.json(await api.get("/api/v1/messages?status=queued"))
    assert [m["priority"] for m in queued["items"]] == ["emergency"]

    released: list = []
    release = QuietHoursRelease(api.db, on_released=lambda: released.append(1))
    now["t"] = datetime(2030, 12, 1, 12, 59)  # 06:59
    assert await release.run_once() == 0
    now["t"] = datetime(2030, 12, 1, 13, 0)  # 07:00
    assert await release.run_once() == 2 and released == [1]
    queued = await api.json(await api.get("/api/v1/messages?status=queued"))
    assert len(queued["items"]) == 3
    message = await api.json(await api.get(f"/api/v1/messages/{first['message_ids'][0]}"))
    assert [h["status"] for h in message["history"]] == ["held", "queued"]
