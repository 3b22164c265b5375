"""The control room over HTTP on a real gateway and simulator: search, a message's story, actions
(roles, CSRF, audit, the CRM API's services), carriers paused in the database, broadcasts' reach."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from gateway.domain.operators import Role
from gateway.store.models import audit_log, messages
from tests.operators.helpers import add_operator, sign_in

from . import test_citizen_replies as replies
from .conftest import Api, case_received
from .test_notices_e2e import _future, _local, subscribe

PASSWORD = "s3cret-control"
NUMBER = "+525512345678"


@pytest.fixture
async def runtime(gateway):
    add_operator(gateway.db, "ana", PASSWORD, Role.OPERATOR)
    add_operator(gateway.db, "vera", PASSWORD, Role.VIEWER)
    return gateway


class Operator:
    """A signed-in browser session: its cookies and the page's CSRF token."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str):
        self.http, self.base, self.token = http, base, token

    async def get(self, path: str, **params) -> tuple[int, dict]:
        async with self.http.get(f"{self.base}/dashboard/{path}", params=params) as resp:
            return resp.status, await resp.json(content_type=None)

    async def post(self, path: str, token: str | None = None) -> tuple[int, dict]:
        headers = {"X-CSRF-Token": self.token if token is None else token}
        async with self.http.post(f"{self.base}/dashboard/{path}", headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


async def operator(runtime, name: str = "ana") -> Operator:
    http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    assert (await sign_in(http, runtime.url, name, PASSWORD)).status == 303
    async with http.get(f"{runtime.url}/dashboard/") as resp:
        page = await resp.text()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    return Operator(http, runtime.url, token)


@pytest.fixture
async def ana(runtime):
    session = await operator(runtime)
    yield session
    await session.http.close()


@pytest.fixture
async def vera(runtime):
    session = await operator(runtime, "vera")
    yield session
    await session.http.close()


async def post_case(runtime, api: Api, **kwargs) -> int:
    status, body = await api.post_event(case_received(**kwargs))
    assert status == 202, body
    return body["message_ids"][0]


def audit_entries(runtime, action: str) -> list[dict]:
    def read(conn):
        query = select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]

    return runtime.db.transaction(read)


async def test_search_by_folio_number_status_and_time_then_a_message_s_story(runtime, api, ana):
    first = await post_case(runtime, api)
    other = await post_case(
        runtime, api, event_id="cesac-000124", msisdn="55 8765 4321", folio="MH-2026-000777"
    )
    await api.wait_status(runtime, first, "delivered")
    await api.wait_status(runtime, other, "delivered")

    status, found = await ana.get("messages", folio="MH-2026-004512")
    assert status == 200
    assert [(m["id"], m["folio"], m["to"], m["number"]) for m in found["items"]] == [
        (first, "MH-2026-004512", "+52******5678", None)
    ]
    assert audit_entries(runtime, "message.view_number") == []  # masked: nothing to audit

    for form in ("55 1234 5678", "+52 1 55 1234 5678", "(55) 1234-5678", "525512345678"):
        status, found = await ana.get("messages", msisdn=form)
        assert status == 200, found
        assert [(m["id"], m["number"]) for m in found["items"]] == [(first, NUMBER)], form
    views = audit_entries(runtime, "message.view_number")
    assert len(views) == 4 and {v["target"] for v in views} == {f"msisdn:{NUMBER}"}
    assert views[0]["actor"] == "ana" and views[0]["detail"]["results"] == 1

    status, found = await ana.get("messages", status="delivered")
    assert {m["id"] for m in found["items"]} == {first, other}
    assert (await ana.get("messages", status="failed"))[1]["items"] == []
    created = (await api.message(first))["created_at"]  # UTC; the page sends the city's time
    assert (await ana.get("messages", since="2000-01-01T00:00", until="2000-01-02T00:00"))[1]["items"] == []
    status, found = await ana.get("messages", since=created, folio="MH-2026-004512")
    assert [m["id"] for m in found["items"]] == [first]
    city = datetime.fromisoformat(created.replace("Z", "+00:00")).astimezone(ZoneInfo("America/Mexico_City"))
    typed = (city - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")  # as typed: the city's time
    assert {m["id"] for m in (await ana.get("messages", since=typed))[1]["items"]} == {first, other}
    later = (city + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    assert (await ana.get("messages", since=typed, until=later))[1]["items"] != []
    assert (await ana.get("messages", since=later))[1]["items"] == []

    status, problem = await ana.get("messages", msisdn="12")
    assert status == 422 and problem["field"] == "msisdn"
    status, problem = await ana.get("messages", status="lost")
    assert status == 422 and problem["field"] == "status"

    status, story = await ana.get(f"messages/{first}")
    assert status == 200
    assert [h["status"] for h in story["history"]] == ["queued", "submitted", "delivered"]
    assert all(h["at"].endswith("Z") for h in story["history"])
    assert story["folio"] == "MH-2026-004512" and story["event_type"] == "case.received"
    assert story["to"] == "+52******5678" and "5512345678" not in str(story)
    (part,) = story["parts"]
    assert part["carrier"] == story["carrier"] and part["status"] == "delivered" and part["seq"] == 1
    assert (await ana.get("messages/999999"))[0] == 404


async def test_a_failed_message_shows_its_smpp_error_and_is_retried_by_an_operator_not_a_viewer(
    runtime, api, simulator, ana, vera
):
    for carrier in simulator.smsc.carriers.values():
        carrier.faults.update({"submit_error_status": 0x0B})  # ESME_RINVDSTADR, permanent
    message = await post_case(runtime, api)
    await api.wait_status(runtime, message, "failed")
    status, story = await ana.get(f"messages/{message}")
    assert story["error"]["code"] == 11 and story["error"]["name"] == "ESME_RINVDSTADR"
    failed = story["history"][-1]
    assert failed["status"] == "failed" and (failed["smpp_code"], failed["smpp_name"]) == (
        11,
        "ESME_RINVDSTADR",
    )

    assert (await vera.post(f"messages/{message}/retry"))[0] == 403  # a viewer reads only
    assert (await ana.post(f"messages/{message}/retry", token="wrong"))[0] == 403  # CSRF
    assert (await ana.get(f"messages/{message}"))[1]["status"] == "failed"  # nothing changed

    for carrier in simulator.smsc.carriers.values():
        carrier.faults.update({"submit_error_status": None})
    status, retried = await ana.post(f"messages/{message}/retry")
    assert status == 200 and retried["previous_status"] == "failed"
    await api.wait_status(runtime, message, "delivered")
    (entry,) = audit_entries(runtime, "message.retry")
    assert entry["actor"] == "ana" and entry["target"] == f"message:{message}"
    status, problem = await ana.post(f"messages/{message}/retry")
    assert status == 409 and "delivered" in problem["detail"]


async def test_a_paused_carrier_s_messages_wait_and_go_when_it_is_resumed(runtime, api, ana, vera):
    dispatcher = runtime.links.dispatcher
    assert (await vera.post("carriers/telcel/pause"))[0] == 403
    for name in ("telcel", "movistar"):
        status, paused = await ana.post(f"carriers/{name}/pause")
        assert status == 200 and paused == {"carrier": name, "paused": True, "changed": True}
    assert (await ana.post("carriers/telcel/pause"))[1]["changed"] is False
    assert (await ana.post("carriers/nextel/pause"))[0] == 404
    _, snapshot = await ana.get("data")
    assert {c["carrier"]: c["paused_by"] for c in snapshot["carriers"]} == {
        "telcel": "ana",
        "movistar": "ana",
    }
    assert all(link["paused"] and link["bound"] for link in snapshot["links"])  # bound, but paused

    message = await post_case(runtime, api)
    for _ in range(3):  # rounds of the dispatcher: routed, never claimed
        await dispatcher.dispatch_once()
    row = runtime.db.transaction(
        lambda conn: conn.execute(select(messages).where(messages.c.id == message)).mappings().one()
    )
    assert row["status"] == "queued" and row["route"] == "telcel" and row["lease_owner"] is None

    status, cancelled = await ana.post(f"messages/{message}/cancel")
    assert status == 200 and cancelled == {"id": message, "status": "cancelled", "previous_status": "queued"}
    assert (await ana.post(f"messages/{message}/cancel"))[0] == 409
    assert [e["target"] for e in audit_entries(runtime, "message.cancel")] == [f"message:{message}"]

    waiting = await post_case(runtime, api, event_id="cesac-000125", folio="MH-2026-000778")
    await dispatcher.dispatch_once()
    assert (await api.message(waiting))["status"] == "queued"
    status, resumed = await ana.post("carriers/telcel/resume")
    assert status == 200 and resumed["changed"] is True
    delivered = await api.wait_status(runtime, waiting, "delivered")
    assert delivered["carrier"] == "telcel"
    assert [e["target"] for e in audit_entries(runtime, "carrier.pause")] == [
        "carrier:telcel",
        "carrier:movistar",
    ]
    assert [e["target"] for e in audit_entries(runtime, "carrier.resume")] == ["carrier:telcel"]
    _, snapshot = await ana.get("data")
    assert {link["carrier"]: link["paused"] for link in snapshot["links"]} == {
        "telcel": False,
        "movistar": True,
    }


async def test_broadcasts_show_progress_and_reach_by_colonia_and_a_finished_one_cannot_be_cancelled(
    runtime, api, ana
):
    subscribe(runtime, "+525511110001", "AGUA", ["Anzures"])
    subscribe(runtime, "+525511110002", "AGUA", ["Anzures"])
    subscribe(runtime, "+525511110003", "AGUA", ["Tacubaya"])
    event = {
        "id": "agua-ctl-1",
        "type": "water.outage",
        "area": {"zones": ["Anzures", "Tacubaya"]},
        "notice": {"starts_at": _local(_future(1, 8, 0)), "ends_at": _local(_future(1, 18, 0))},
    }
    status, accepted = await api.post_event(event)
    assert status == 202, accepted
    broadcast = accepted["broadcast_id"]

    async def progress() -> dict:
        _, listing = await ana.get("broadcasts")
        (item,) = [b for b in listing["items"] if b["id"] == broadcast]
        return item

    while (item := await progress())["progress"]["delivered"] < 3:
        await runtime.writer.next_commit()
    assert item["recipients"] == 3 and item["segments"] >= 3 and item["status"] == "done"
    _, reach = await ana.get(f"broadcasts/{broadcast}/reach")
    assert reach["zones"] == [
        {"zone": "Anzures", "delivered": 2, "failed": 0, "pending": 0, "cancelled": 0},
        {"zone": "Tacubaya", "delivered": 1, "failed": 0, "pending": 0, "cancelled": 0},
    ]
    status, problem = await ana.post(f"broadcasts/{broadcast}/cancel")
    assert status == 409 and "finished" in problem["detail"]
    assert (await ana.get("broadcasts/999999/reach"))[0] == 404

    for name in ("telcel", "movistar"):
        await ana.post(f"carriers/{name}/pause")
    status, accepted = await api.post_event({**event, "id": "agua-ctl-2"})
    second = accepted["broadcast_id"]
    await runtime.links.fanout.run_until_idle()
    assert (await ana.get("broadcasts"))[1]["items"][0]["progress"]["queued"] == 3  # waiting: paused
    status, cancelled = await ana.post(f"broadcasts/{second}/cancel")
    assert status == 200 and cancelled["cancelled"] == 3
    _, listing = await ana.get("broadcasts")
    assert listing["items"][0]["progress"]["cancelled"] == 3 and listing["items"][0]["status"] == "cancelled"
    (entry,) = audit_entries(runtime, "broadcast.cancel")
    assert entry["target"] == f"broadcast:{second}" and entry["detail"]["cancelled"] == 3


@pytest.fixture
async def phones(runtime, simulator):
    """Virtual handsets that text the gateway through the simulator (as in test_citizen_replies)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        inbox = replies.Inbox(runtime)
        yield lambda number: replies.Phone(number, runtime, simulator, inbox, http)


@pytest.fixture
async def admin(runtime):
    add_operator(runtime.db, "ines", PASSWORD, Role.ADMIN)
    session = await operator(runtime, "ines")
    yield session
    await session.http.close()


async def post_json(session: Operator, path: str, body: dict) -> tuple[int, dict]:
    headers = {"X-CSRF-Token": session.token}
    async with session.http.post(f"{session.base}/dashboard/{path}", json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_citizens_sms_ledger_export_and_a_confirmed_forget(runtime, phones, ana, admin):
    await phones(NUMBER).ask("alta agua anzures")
    status, inbound = await ana.get("citizens/inbound")
    assert status == 200
    (mo,) = inbound["items"]
    assert mo["sender"] == "+52******5678" and mo["intent"] == "subscribe" and mo["keyword"] == "ALTA"
    assert mo["understood"]["topic"] == "AGUA" and "text" not in mo and "alta agua" not in str(mo)

    status, ledger = await ana.get("citizens/ledger", msisdn="55 1234 5678")
    assert status == 200 and ledger["number"] == NUMBER and ledger["opted_out"] is False
    assert ledger["subscriptions"] == [{"topic": "AGUA", "zone": "Anzures"}]
    assert [(e["action"], e["channel"], e["raw"]) for e in ledger["ledger"]][-1][1:] == (
        "sms",
        "alta agua anzures",
    )
    assert [e["target"] for e in audit_entries(runtime, "citizen.view_ledger")] == [f"msisdn:{NUMBER}"]
    assert (await ana.get("citizens/ledger", msisdn="+52 55 0000 0000"))[0] == 404

    assert (await post_json(ana, "citizens/export", {"msisdn": NUMBER}))[0] == 403  # admins only
    status, exported = await post_json(admin, "citizens/export", {"msisdn": "5512345678"})
    assert status == 200 and exported["msisdn"] == NUMBER
    assert [e["actor"] for e in audit_entries(runtime, "citizen.export")] == ["ines"]

    status, problem = await post_json(admin, "citizens/forget", {"msisdn": NUMBER, "confirm": "5512345679"})
    assert status == 422 and problem["field"] == "confirm"
    assert (await ana.get("citizens/ledger", msisdn=NUMBER))[1]["subscriptions"] != []  # nothing erased
    assert (await post_json(ana, "citizens/forget", {"msisdn": NUMBER, "confirm": NUMBER}))[0] == 403
    status, forgotten = await post_json(
        admin, "citizens/forget", {"msisdn": NUMBER, "confirm": "(55) 1234-5678"}
    )
    assert status == 200 and forgotten["erased"]["subscriptions"] == 1
    _, ledger = await ana.get("citizens/ledger", msisdn=NUMBER)
    assert ledger["opted_out"] is True and ledger["subscriptions"] == []
    assert "alta agua anzures" not in str(ledger)
    (entry,) = audit_entries(runtime, "citizen.forget")
    assert entry["target"] == "msisdn:+52******5678" and entry["actor"] == "ines"


async def test_the_overview_counts_silent_failures(runtime, ana):
    _, snapshot = await ana.get("data")
    assert snapshot["silent_failures"] == {
        "receipts_unparsed": 0,
        "receipts_unknown": 0,
        "receipts_duplicate": 0,
        "receipts_ambiguous": 0,
        "status_changes_set_aside": 0,
        "bad_message_ids": 0,
        "unexpected_pdus": 0,
        "mo_refused": 0,
        "callbacks_given_up": 0,
    }
