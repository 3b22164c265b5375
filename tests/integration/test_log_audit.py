"""What the logs say of citizens: a realistic flow (a case event, a rejected one, citizens
subscribing and asking by SMS through the simulator, a water outage broadcast to them, a retry)
with every line captured as JSON at debug and at info level, searched for phone numbers in any
form (E.164, the SMPP form, 10 digits, spaced) and, at info level and above, for the texts sent
and received."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import structlog
from sqlalchemy import select

from gateway.logging import configure_logging
from gateway.roles import Gateway, build
from gateway.store.models import messages, mobile_messages
from simulator.app import Simulator

from .conftest import Api, carrier_ports, case_received, gateway_settings, simulator_settings

pytestmark = pytest.mark.integration

CITY = ZoneInfo("America/Mexico_City")
ANA, LUIS, EVA = "+525512345678", "+525587654321", "+525511223344"
NUMBER_FORMS = [
    re.compile(r"(?<!\w)\+?52 ?1? ?\d{10}(?!\w)"),  # E.164 and the SMPP form, with or without the 1
    re.compile(r"(?<!\w)\d{10}(?!\w)"),  # ten digits (not inside a hex id)
    re.compile(r"(?<!\w)\d{2}[ -]\d{4}[ -]\d{4}(?!\w)"),  # 55 1234 5678, 55-1234-5678
]


def handset(sim: Simulator, number: str) -> list[str]:
    now = time.time()
    return [m.as_dict(now)["text"] for m in sim.store.messages(to=number)]


async def wait_handset(runtime: Gateway, sim: Simulator, number: str, count: int) -> list[str]:
    """The handset's texts once it has ``count``, re-read after each committed status batch."""

    async def watch() -> list[str]:
        while True:
            commit = asyncio.ensure_future(runtime.writer.next_commit())
            texts = handset(sim, number)
            if len(texts) >= count:
                commit.cancel()
                return texts
            await commit

    return await asyncio.wait_for(watch(), 15)


async def send_sms(api: Api, sim: Simulator, number: str, text: str) -> None:
    async with api.session.post(f"{sim.http_url}/sim/mo", json={"from": number, "text": text}) as r:
        assert r.status == 202, await r.text()


@pytest.fixture
def captured_logs(request):
    """Every log line, as JSON, at the level of the test's parameter; the set-up restored after."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging("json", request.param, stream=buffer)
    yield request.param, buffer
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.parametrize("captured_logs", ["debug", "info"], indirect=True)
async def test_no_log_line_carries_a_number_and_none_at_info_a_text(captured_logs, sqlite_url):
    sim = Simulator(simulator_settings())
    await sim.start()
    runtime = build(gateway_settings(sqlite_url, carrier_ports(sim)))
    await runtime.start()
    api = Api(runtime.url)
    try:
        assert await runtime.pool.wait_bound(5)
        # a case event, and one with a number that is not Mexican (a 422 naming it)
        status, body = await api.post_event(case_received(msisdn="55 1234 5678"))
        assert status == 202, body
        status, refused = await api.post_event(case_received("cesac-bad", msisdn="+1 212 555 0100"))
        assert status == 422 and refused["field"] == "citizen.msisdn"
        await api.wait_status(runtime, body["message_ids"][0], "delivered")
        # citizens subscribe and ask by SMS (one writes a number in the text)
        await send_sms(api, sim, LUIS, "ALTA AGUA Anzures")
        await send_sms(api, sim, EVA, "alta agua 11590")
        await send_sms(api, sim, ANA, "ESTADO MH-2026-004512")
        await send_sms(api, sim, LUIS, "hola, mi otro numero es 55 1111 2222")
        await wait_handset(runtime, sim, LUIS, 2)
        await wait_handset(runtime, sim, EVA, 1)
        await wait_handset(runtime, sim, ANA, 2)
        # a water outage broadcast to the subscribers
        day = (datetime.now(UTC) + timedelta(days=1)).astimezone(CITY).date()
        starts = datetime(day.year, day.month, day.day, 8, tzinfo=CITY)
        outage = {
            "id": "agua-1",
            "type": "water.outage",
            "area": {"zones": ["Anzures"]},
            "notice": {
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=10)).isoformat(),
            },
        }
        status, broadcast = await api.post_event(outage)
        assert status == 202 and broadcast["recipients"] == 2, broadcast
        await wait_handset(runtime, sim, LUIS, 3)
        await wait_handset(runtime, sim, EVA, 2)
        with runtime.db.engine.connect() as conn:
            texts = set(conn.execute(select(messages.c.body)).scalars())
            texts |= set(conn.execute(select(mobile_messages.c.text)).scalars())
    finally:
        await api.close()
        assert await runtime.stop()
        await sim.stop()

    level, buffer = captured_logs
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    levels = {line["level"] for line in lines}
    assert "info" in levels and ("debug" in levels) == (level == "debug")
    for line in lines:
        rendered = json.dumps(line, ensure_ascii=False)
        for form in NUMBER_FORMS:
            assert not form.search(rendered), rendered
    assert len(texts) >= 8
    for line in lines:
        if line["level"] == "debug":
            continue
        rendered = json.dumps(line, ensure_ascii=False)
        for text in texts:
            assert text not in rendered, (text, rendered)
            assert text[:24] not in rendered, (text, rendered)
