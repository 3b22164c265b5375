"""GET / POST / DELETE /api/v1/subscriptions on SQLite and PostgreSQL: the same rules as
the SMS keywords, problem+json naming the field at fault, the opt-out, explicit consent, the ledger."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, select

from gateway import clock
from gateway.http.signing import Signer
from gateway.roles import Gateway
from gateway.store import outbox
from gateway.store.models import citizens, consent_events, messages, subscriptions
from tests.api_gateway import api_settings, running

CITY = ZoneInfo("America/Mexico_City")
SECRET = "s3cret"
ANA = "+525512345678"
PATH = "/api/v1/subscriptions"


class Client:
    def __init__(self, client: aiohttp.ClientSession, gateway: Gateway):
        self.client, self.db = client, gateway.db
        self.signer = Signer("cesac", SECRET)

    def headers(self, method: str, url: str, body: bytes, secret: str = SECRET) -> dict:
        return {"Content-Type": "application/json", **self.signer.headers(method, url, body, secret=secret)}

    async def call(
        self, method: str, path: str = PATH, data=None, query: dict | None = None, raw: bytes | None = None
    ):
        body = raw if raw is not None else (json.dumps(data).encode() if data is not None else b"")
        url = f"{path}?{urlencode(query)}" if query else path
        response = await self.client.request(method, url, data=body, headers=self.headers(method, url, body))
        text = await response.text()
        return response.status, (json.loads(text) if text else None), response.content_type

    def scalar(self, query):
        with self.db.engine.connect() as conn:
            return conn.execute(query).scalar()

    def ledger(self) -> list:
        with self.db.engine.connect() as conn:
            return conn.execute(
                select(
                    consent_events.c.action,
                    consent_events.c.channel,
                    consent_events.c.client_id,
                    consent_events.c.topics,
                    consent_events.c.zones,
                    consent_events.c.raw,
                ).order_by(consent_events.c.id)
            ).all()


@pytest.fixture
async def api(db_url):
    async with running(api_settings(db_url)) as (gateway, client):
        yield Client(client, gateway)


async def test_post_subscribes_and_get_lists(api):
    body = {
        "msisdn": "55 1234 5678",
        "topic": "AGUA",
        "zones": ["Polanco V Sección", "11590"],
        "language": "es",
    }
    status, data, _ = await api.call("POST", data=body)
    assert status == 201, data
    assert data["added"] == 2 and data["opted_in"] is False and data["msisdn"] == ANA
    assert {(s["topic"], s["zone"]) for s in data["subscriptions"]} == {
        ("AGUA", "Polanco V Sección"),
        ("AGUA", "Anzures"),
    }
    status, again, _ = await api.call("POST", data=body)
    assert status == 200 and again["added"] == 0  # nothing new
    status, listed, _ = await api.call("GET", query={"msisdn": "5512345678"})
    assert status == 200 and listed["subscriptions"] == again["subscriptions"] and listed["known"] is True
    (first, _repeated) = api.ledger()
    assert first.action == "subscribe" and first.channel == "api" and first.client_id == "cesac"
    assert first.topics == ["AGUA"] and first.zones == ["Polanco V Sección", "Anzures"]
    assert json.loads(first.raw) == body


async def test_no_topic_means_every_topic_and_no_zone_every_zone(api):
    status, data, _ = await api.call("POST", data={"msisdn": ANA})
    assert status == 201
    assert {(s["topic"], s["zone"]) for s in data["subscriptions"]} == {
        ("AGUA", None), ("VIAL", None), ("EMERGENCIA", None), ("AVISOS", None)
    }  # fmt: skip
    status, unknown, _ = await api.call("GET", query={"msisdn": "55 9999 0000"})
    assert status == 200 and unknown == {
        "msisdn": "+525599990000", "known": False, "opted_out": False, "language": None, "subscriptions": []
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"topic": "AGUA"}, "msisdn", 400),
        ({"msisdn": "12345"}, "msisdn", 422),
        ({"msisdn": ANA, "topic": "LUZ"}, "topic", 422),
        ({"msisdn": ANA, "zones": "Polanco"}, "zones", 422),
        ({"msisdn": ANA, "zones": ["Anzures", "Polanco"]}, "zones[1]", 422),
        ({"msisdn": ANA, "zones": ["Narnia"]}, "zones[0]", 422),
        ({"msisdn": ANA, "language": "fr"}, "language", 422),
        ({"msisdn": ANA, "consent": "yes"}, "consent", 422),
        ({"msisdn": ANA, "topics": ["AGUA"]}, "topics", 422),
    ],
)
async def test_invalid_requests_name_the_field_and_write_nothing(api, body, field, status):
    code, problem, content_type = await api.call("POST", data=body)
    assert code == status and content_type == "application/problem+json"
    assert problem["field"] == field, problem
    assert api.scalar(select(func.count()).select_from(citizens)) == 0
    assert api.ledger() == []


async def test_an_ambiguous_colonia_names_the_choices(api):
    _, problem, _ = await api.call("POST", data={"msisdn": ANA, "zones": ["Polanco"]})
    assert (
        "'Polanco' means several colonias: Polanco I Sección (11510)"
        in problem["invalid_params"][0]["reason"]
    )


async def test_a_misspelt_colonia_gets_a_suggestion(api):
    status, problem, _ = await api.call("POST", data={"msisdn": ANA, "zones": ["Anzures", "Granad"]})
    assert status == 422 and problem["field"] == "zones[1]"
    assert problem["invalid_params"][0]["reason"] == (
        "unknown colonia or postal code 'Granad' in the zone catalogue; did you mean Granada?"
    )


async def test_delete_a_topic_then_everything(api):
    await api.call("POST", data={"msisdn": ANA, "topic": "AGUA"})
    await api.call("POST", data={"msisdn": ANA, "topic": "VIAL"})
    status, data, _ = await api.call("DELETE", query={"msisdn": ANA, "topic": "agua"})
    assert status == 200 and data["removed"] == 1 and [s["topic"] for s in data["subscriptions"]] == ["VIAL"]
    now = clock.utcnow()
    cid = api.scalar(select(citizens.c.id).where(citizens.c.msisdn == ANA))
    waiting = api.db.transaction(
        outbox.enqueue,
        [{"citizen_id": cid, "msisdn": ANA, "language": "es", "body": "x", "encoding": "gsm7", "segments": 1,
          "priority": 2, "expires_at": now + timedelta(hours=1)}],
        now,
    )  # fmt: skip
    status, data, _ = await api.call("DELETE", data={"msisdn": ANA})  # no topic: the opt-out
    assert status == 200 and data["opted_out"] is True and data["removed"] == 1 and data["cancelled"] == 1
    assert api.scalar(select(messages.c.status).where(messages.c.id == waiting[0])) == "cancelled"
    assert [e.action for e in api.ledger()] == ["subscribe", "subscribe", "unsubscribe", "opt_out"]
    assert api.ledger()[2].raw == "msisdn=%2B525512345678&topic=agua"


async def test_an_opted_out_citizen_needs_explicit_consent(api):
    await api.call("DELETE", query={"msisdn": ANA})  # an unknown number is recorded, opted out
    status, problem, content_type = await api.call("POST", data={"msisdn": ANA, "topic": "AGUA"})
    assert status == 409 and content_type == "application/problem+json" and problem["field"] == "consent"
    assert api.scalar(select(func.count()).select_from(subscriptions)) == 0
    status, data, _ = await api.call("POST", data={"msisdn": ANA, "topic": "AGUA", "consent": "explicit"})
    assert status == 201 and data["opted_in"] is True and data["opted_out"] is False
    assert [e.action for e in api.ledger()] == ["opt_out", "opt_in", "subscribe"]


async def test_requests_are_signed(api):
    response = await api.client.get(PATH, params={"msisdn": ANA})
    assert response.status == 401
    body = json.dumps({"msisdn": ANA}).encode()
    response = await api.client.post(PATH, data=body, headers=api.headers("POST", PATH, body, secret="wrong"))
    assert response.status == 401
    status, problem, _ = await api.call("DELETE", query={"msisdn": ANA, "zone": "x"})
    assert status == 400 and problem["field"] == "zone"
    status, problem, _ = await api.call("POST", raw=b"{not json")
    assert status == 400
