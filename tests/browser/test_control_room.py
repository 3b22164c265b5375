"""The control room in a real browser: search a number and read a message's story, pause a carrier
and see its binds paused, watch a broadcast's bar move and cancel one, a phone's width, English."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway.domain.operators import Role
from gateway.store import reads
from gateway.store.models import audit_log
from tests.integration.conftest import Api, case_received
from tests.integration.test_notices_e2e import _future, _local, subscribe
from tests.operators.helpers import add_operator

from .conftest import OPERATOR, PASSWORD, screenshot
from .test_operator_login import sign_in

pytestmark = pytest.mark.browser

CITY = ZoneInfo("America/Mexico_City")
SUBSCRIBERS = 30


def city_time(utc_iso: str) -> str:
    return (
        datetime.fromisoformat(utc_iso.replace("Z", "+00:00")).astimezone(CITY).strftime("%Y-%m-%d %H:%M:%S")
    )


async def accept_dialogs(dialog) -> None:
    await dialog.accept()


async def open_control_room(gateway, page, username: str = OPERATOR) -> list[str]:
    """Signed in and live; returns the list, growing, of every URL the page requests."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("dialog", accept_dialogs)
    await page.goto(f"{gateway.url}/dashboard/")
    await sign_in(page, username, PASSWORD)
    await page.wait_for_function("document.getElementById('state').textContent === 'en vivo'")
    return requested


async def fits(page, width: int) -> None:
    """Nothing wider than the page, no table wider than its card."""
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    overflowing = await page.evaluate(
        """() => [...document.querySelectorAll('main:not([hidden]) table')]
             .filter(t => t.scrollWidth > t.closest('section').clientWidth).map(t => t.id)"""
    )
    assert overflowing == []


async def test_search_a_number_open_its_story_on_a_phone_and_in_english_then_sign_out(gateway, page):
    api = Api(gateway.url)
    try:
        status, body = await api.post_event(case_received())
        assert status == 202
        message_id = body["message_ids"][0]
        message = await api.wait_status(gateway, message_id, "delivered")
    finally:
        await api.close()
    requested = await open_control_room(gateway, page)
    await page.click("nav >> text=Mensajes")
    await page.fill('#search input[name="msisdn"]', "(55) 1234-5678")
    await page.click("#search button[type=submit]")
    found = page.locator(f'#results tbody tr[data-id="{message_id}"]')
    assert "+525512345678" in await found.inner_text()  # the whole number, in a search by number
    await found.click()
    await page.locator("#history tbody tr").nth(2).wait_for()
    history = page.locator("#history tbody tr")
    assert [await history.nth(i).locator(".pill").inner_text() for i in range(3)] == [
        "en cola",
        "enviado",
        "entregado",
    ]
    times = [h["at"] for h in message["history"]]
    assert [await history.nth(i).locator("td").first.inner_text() for i in range(3)] == [
        city_time(t) for t in times
    ]  # the city's time, 24-hour
    part = page.locator("#parts tbody tr").first
    assert message["carrier"] in await part.inner_text()
    assert "+52******5678" in await page.locator("#story-facts").inner_text()
    await page.click("#retry")  # a delivered message cannot be sent again: the 409 is shown
    await page.wait_for_function("document.getElementById('story-notice').textContent.startsWith('409')")
    assert (await page.locator("#story-notice").inner_text()).startswith(
        "409 · Solo se reintentan mensajes fallidos"
    )
    await screenshot(page, "control-story")

    def views(conn):
        return conn.execute(
            select(audit_log.c.actor, audit_log.c.target).where(audit_log.c.action == "message.view_number")
        ).all()

    assert gateway.db.transaction(views) == [(OPERATOR, "msisdn:+525512345678")]

    await page.set_viewport_size({"width": 360, "height": 740})
    await fits(page, 360)
    await screenshot(page, "control-story-360px")
    await page.click("nav >> text=Resumen")
    await fits(page, 360)
    await screenshot(page, "control-overview-360px")

    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.click("#language")
    await page.wait_for_function("document.getElementById('state').textContent === 'live'")
    assert await page.locator("nav button").all_inner_texts() == [
        "Overview",
        "Messages",
        "Broadcasts",
        "Carriers",
        "Citizens",
    ]
    row = page.locator("#recent tbody tr").first
    assert "delivered" in await row.inner_text()
    await screenshot(page, "control-overview-en")

    assert requested and all(url.startswith(f"{gateway.url}/") for url in requested)  # no CDN
    await page.click("#logout")
    await page.wait_for_url(re.compile(r"/dashboard/login\?bye=1$"))
    assert (await page.request.get(f"{gateway.url}/dashboard/messages?msisdn=5512345678")).status == 401
    assert (await page.request.get(f"{gateway.url}/dashboard/messages/{message_id}")).status == 401
    assert (await page.request.post(f"{gateway.url}/dashboard/carriers/telcel/pause")).status in (401, 403)


async def test_pause_a_carrier_and_see_its_binds_paused_then_resume_it(gateway, page):
    await open_control_room(gateway, page)
    await page.click("nav >> text=Compañías")
    telcel = page.locator('#carrier-table tbody tr[data-carrier="telcel"]')
    assert await telcel.get_attribute("data-state") == "bound"
    await telcel.locator("button").click()
    await page.locator('#carrier-table tbody tr[data-carrier="telcel"][data-state="paused"]').wait_for()
    assert "en pausa por ana" in await telcel.inner_text()
    await screenshot(page, "control-carrier-paused")
    await page.click("nav >> text=Resumen")
    binds = page.locator('#links tbody tr[data-carrier="telcel"]')
    assert [await binds.nth(i).locator(".pill").inner_text() for i in range(await binds.count())] == [
        "en pausa"
    ]
    assert await page.locator('#links tbody tr[data-carrier="movistar"] .pill').inner_text() == "conectado"
    await screenshot(page, "control-links-paused")
    await page.click("nav >> text=Compañías")
    await telcel.locator("button", has_text="Reanudar").click()
    await page.locator('#carrier-table tbody tr[data-carrier="telcel"][data-state="bound"]').wait_for()


async def test_a_viewer_sees_no_action(gateway, page):
    add_operator(gateway.db, "vera", PASSWORD, Role.VIEWER)
    await open_control_room(gateway, page, "vera")
    await page.click("nav >> text=Compañías")
    await page.locator('#carrier-table tbody tr[data-carrier="telcel"]').wait_for()
    assert await page.locator("#carrier-table button").count() == 0
    assert "no puede realizar acciones" in await page.locator("#carriers").inner_text()
    assert await page.locator("#retry").count() == 0
    assert await page.locator("#forget").count() == 0 and await page.locator("#export").count() == 0
    assert await page.locator(".cancel-broadcast").count() == 0


async def watch_segment(page, broadcast_id: int, segment: str, count: int) -> None:
    await page.locator(
        f'#broadcast-{broadcast_id} .bar span[data-segment="{segment}"][data-count="{count}"]'
    ).wait_for()


async def test_watch_a_broadcast_s_bar_move_and_cancel_one(gateway, page):
    for n in range(SUBSCRIBERS):
        subscribe(gateway, f"+5255111{n:05d}", "AGUA", ["Anzures"])
    actions = gateway.dashboard.control.actions
    for carrier in ("telcel", "movistar"):  # the messages wait until the page resumes a carrier
        await actions.pause_carrier(carrier, by="test")
    await open_control_room(gateway, page)
    await page.click("nav >> text=Difusiones")
    event = {
        "id": "agua-browser-1",
        "type": "water.outage",
        "area": {"zones": ["Anzures"]},
        "notice": {"starts_at": _local(_future(1, 8, 0)), "ends_at": _local(_future(1, 18, 0))},
    }
    api = Api(gateway.url)
    try:
        status, first = await api.post_event(event)
        assert status == 202
        await watch_segment(page, first["broadcast_id"], "queued", SUBSCRIBERS)
        await screenshot(page, "control-broadcast-queued")
        await page.click("nav >> text=Compañías")
        await page.locator('#carrier-table tr[data-carrier="telcel"] button').click()
        await page.click("nav >> text=Difusiones")
        await watch_segment(page, first["broadcast_id"], "delivered", SUBSCRIBERS)  # the bar moved
        card = page.locator(f"#broadcast-{first['broadcast_id']}")
        await card.locator(".reach-toggle").click()
        zone = card.locator('.zone[data-zone="Anzures"]')
        await zone.wait_for()
        assert f"entregado {SUBSCRIBERS}" in await zone.inner_text()
        await screenshot(page, "control-broadcast-delivered")
        await card.locator(".cancel-broadcast").click()
        notice = page.locator("#broadcast-notice")
        await page.wait_for_function(
            "document.getElementById('broadcast-notice').textContent.startsWith('409')"
        )
        assert (
            "Ya no se puede cancelar" in await notice.inner_text() and "finished" in await notice.inner_text()
        )

        await actions.pause_carrier("telcel", by="test")
        status, second = await api.post_event({**event, "id": "agua-browser-2"})
        assert status == 202
    finally:
        await api.close()
    await watch_segment(page, second["broadcast_id"], "queued", SUBSCRIBERS)
    await page.locator(f"#broadcast-{second['broadcast_id']} .cancel-broadcast").click()
    await watch_segment(page, second["broadcast_id"], "cancelled", SUBSCRIBERS)
    assert (
        await page.locator(f"#broadcast-{second['broadcast_id']}").get_attribute("data-status") == "cancelled"
    )
    assert await page.locator(f"#broadcast-{second['broadcast_id']} .bar span").count() == 1  # all cancelled
    await screenshot(page, "control-broadcast-cancelled")


async def test_a_citizen_s_sms_ledger_and_a_confirmed_forget(gateway, simulator, page):
    phone = "+525512345678"
    api = Api(gateway.url)  # a citizen texts the short code through the simulator
    try:
        async with api.session.post(
            f"{simulator.http_url}/sim/mo", json={"from": phone, "text": "ALTA AGUA ANZURES"}
        ) as r:
            assert r.status == 202

        async def subscribed() -> bool:
            return bool(gateway.db.transaction(lambda conn: reads.consent_ledger(conn, phone)))

        while not await subscribed():
            await gateway.writer.next_commit()  # its reply is committed after the SMS
    finally:
        await api.close()

    async def type_the_number(dialog) -> None:
        await dialog.accept("55 1234 5678")

    page.on("dialog", type_the_number)
    await page.goto(f"{gateway.url}/dashboard/")
    await sign_in(page, OPERATOR, PASSWORD)
    assert await page.locator('#silent [data-counter="receipts_unparsed"] .n').inner_text() == "0"
    await page.click("nav >> text=Ciudadanos")
    inbound = page.locator("#inbound tbody tr").first
    await inbound.wait_for()
    assert (
        "alta · AGUA · Anzures" in await inbound.inner_text()
        and "+52******5678" in await inbound.inner_text()
    )
    await page.fill('#ledger-form input[name="msisdn"]', "55 1234 5678")
    await page.click("#ledger-form button")
    await page.locator("#ledger-table tbody tr").first.wait_for()
    assert "suscripción · AGUA" in await page.locator("#ledger-table").inner_text()
    assert "ALTA AGUA ANZURES" in await page.locator("#ledger-table").inner_text()
    assert "AGUA · Anzures" in await page.locator("#ledger-facts").inner_text()
    await screenshot(page, "control-citizen-ledger")
    async with page.expect_download() as download:
        await page.click("#export")
    saved = Path(await (await download.value).path())
    exported = json.loads(await asyncio.to_thread(saved.read_text))
    assert exported["msisdn"] == phone and exported["messages_received"][0]["text"] == "ALTA AGUA ANZURES"
    await page.set_viewport_size({"width": 360, "height": 740})
    await fits(page, 360)
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.click("#forget")
    await page.wait_for_function(
        "document.getElementById('ledger-notice').textContent.startsWith('Datos borrados')"
    )
    assert "dado de baja" in await page.locator("#ledger-facts").inner_text()
    assert "ALTA AGUA ANZURES" not in await page.locator("#ledger-table").inner_text()
    await screenshot(page, "control-citizen-forgotten")
