"""Every event type end to end: signed POST -> gateway -> SMPP -> simulator handset, checking the text.

Real gateway and real simulator over sockets, on SQLite and PostgreSQL (the ``db_url`` fixture).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway import clock
from gateway.domain import dates
from gateway.roles import Gateway, build
from gateway.store import subscriptions
from gateway.store.citizens import upsert_citizen
from gateway.store.models import appointments
from gateway.store.subscriptions import citizen_id_of
from gateway.store.zones import ids_of
from simulator.app import Simulator

from .conftest import Api, carrier_ports, gateway_settings

CITY = ZoneInfo("America/Mexico_City")
ANA = "+525512345678"


def handset(sim: Simulator, number: str) -> list[str]:
    """Texts on a virtual handset, oldest first."""
    now = time.time()
    return [m.as_dict(now)["text"] for m in sim.store.messages(to=number)]


async def wait_handset(sim: Simulator, number: str, count: int = 1, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        texts = handset(sim, number)
        if len(texts) >= count or time.monotonic() > deadline:
            return texts
        await asyncio.sleep(0.02)


def _local(moment: datetime) -> str:
    return moment.astimezone(CITY).isoformat()


def _future(days: float = 3, hour: int = 10, minute: int = 30) -> datetime:
    day = (datetime.now(UTC) + timedelta(days=days)).astimezone(CITY).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CITY)


def case_event(
    event_id: str, type_: str, folio: str = "MH-2026-004512", msisdn: str = "55 1234 5678", **case
):
    return {
        "id": event_id,
        "type": type_,
        "occurred_at": "2026-11-29T10:00:00-06:00",
        "case": {"folio": folio, **case},
        "citizen": {"msisdn": msisdn, "name": "Ana", "language": "es"},
    }


def reminders_due(runtime: Gateway) -> list[tuple[bool, bool, str]]:
    """(24 h reminder planned, 2 h reminder planned, status) of every appointment."""
    a = appointments.c
    with runtime.db.engine.connect() as conn:
        rows = conn.execute(select(a.remind_24h_at, a.remind_2h_at, a.status).order_by(a.id)).all()
    return [(r[0] is not None, r[1] is not None, r[2]) for r in rows]


def subscribe(runtime: Gateway, msisdn: str, topic: str, zones: list[str], language: str = "es"):
    policy = runtime.policy

    def work(conn):
        citizen_id, _, _ = upsert_citizen(conn, msisdn, language, None, clock.utcnow())
        wanted = [z for name in zones for z in policy.zones.match(name, partial=False)]
        subscriptions.subscribe(
            conn, citizen_id, topic, ids_of(conn, wanted) if wanted else None, clock.utcnow()
        )
        return citizen_id

    return runtime.db.transaction(work)


CASE_TEXTS = [
    (
        "case.received",
        {"category": "Fuga de agua"},
        "Su reporte MH-2026-004512 fue recibido el 29/11/2026. Consulte: ESTADO MH-2026-004512 al 30311. "
        "Responda ALTA AGUA para avisos de cortes de agua en su colonia.",  # a first case: enrolment fits
    ),
    (
        "case.status_changed",
        {"status": "En proceso", "progress": 60},
        "Su reporte MH-2026-004512 cambio de estado: En proceso, avance 60%. "
        "Para mas informacion envie ESTADO MH-2026-004512 al 30311.",
    ),
    (
        "case.resolved",
        {"category": "Fuga de agua", "resolution_date": "2026-12-02"},
        "Su reporte MH-2026-004512 de Fuga de agua quedo resuelto el miércoles 2 de diciembre. "
        "Gracias por avisarnos.",
    ),
    (
        "case.closed",
        {"category": "Fuga de agua"},
        "Concluimos la atencion de su reporte MH-2026-004512 de Fuga de agua. Gracias por su participacion.",
    ),
]


@pytest.mark.parametrize(("type_", "case", "expected"), CASE_TEXTS, ids=[t for t, _, _ in CASE_TEXTS])
async def test_case_event_reaches_the_handset(gateway, api, simulator, type_, case, expected):
    status, body = await api.post_event(case_event(f"e-{type_}", type_, **case))
    assert status == 202, body
    (message_id,) = body["message_ids"]
    message = await api.wait_status(gateway, message_id, "delivered")
    assert message["text"] == expected
    assert handset(simulator, ANA) == [expected]


async def test_appointment_scheduled_asks_si_no_and_cancelled_tells_the_citizen(gateway, api, simulator):
    at = _future()
    when = dates.long_datetime(at, CITY, "es")
    status, body = await api.post_event(
        case_event("e-apt", "appointment.scheduled", appointment={"at": _local(at), "place": "Módulo Tacuba"})
    )
    assert status == 202, body
    await api.wait_status(gateway, body["message_ids"][0], "delivered")
    assert handset(simulator, ANA) == [
        f"Tiene cita por su reporte MH-2026-004512 el {when} en Modulo Tacuba. "
        "Responda SI para confirmar o NO si no puede asistir."
    ]
    assert body["message_ids"] and (await api.message(body["message_ids"][0]))["priority"] == "high"
    assert reminders_due(gateway) == [(True, True, "pending")]

    status, body = await api.post_event(case_event("e-apt-x", "appointment.cancelled"))
    assert status == 202, body
    await api.wait_status(gateway, body["message_ids"][0], "delivered")
    assert handset(simulator, ANA)[-1] == (
        f"Se cancelo su cita por el reporte MH-2026-004512 del {when}. "
        "Para mas informacion envie ESTADO MH-2026-004512 al 30311."
    )
    assert reminders_due(gateway) == [(True, True, "cancelled")]  # cancelled: none will go


async def test_service_confirmed(gateway, api, simulator):
    at = _future(days=2, hour=9, minute=0)
    status, body = await api.post_event(
        case_event("e-svc", "service.confirmed", category="Pipa de agua", appointment={"at": _local(at)})
    )
    assert status == 202, body
    await api.wait_status(gateway, body["message_ids"][0], "delivered")
    assert handset(simulator, ANA) == [
        f"Su servicio de Pipa de agua (reporte MH-2026-004512) esta confirmado para el "
        f"{dates.long_datetime(at, CITY, 'es')}."
    ]


async def test_water_outage_reaches_subscribers_in_the_zones_once_each(gateway, api, simulator):
    subscribe(gateway, "+525511110001", "AGUA", ["Polanco V Sección"])
    subscribe(gateway, "+525511110002", "AGUA", ["Anzures", "11590", "Polanco"])  # matches twice
    subscribe(gateway, "+525511110003", "AGUA", ["Tacubaya"])  # another zone
    subscribe(gateway, "+525511110004", "VIAL", ["Anzures"])  # another topic
    subscribe(gateway, "+525511110005", "AGUA", ["Anzures"], language="en")
    starts, ends = _future(1, 8, 0), _future(1, 18, 0)
    event = {
        "id": "agua-1",
        "type": "water.outage",
        "area": {"zones": ["Polanco", "11590"]},
        "notice": {"starts_at": _local(starts), "ends_at": _local(ends)},
    }
    status, body = await api.post_event(event)
    assert status == 202, body
    assert body["message_ids"] == [] and body["recipients"] == 3 and body["broadcast_id"]
    span_es = dates.time_span(starts, ends, CITY, "es")
    expected = f"Corte de agua en Polanco y C.P. 11590 {span_es}. Almacene agua con anticipacion."
    assert await wait_handset(simulator, "+525511110001") == [expected]
    assert await wait_handset(simulator, "+525511110002") == [expected]
    english = await wait_handset(simulator, "+525511110005")
    assert english == [
        f"Water cut in Polanco and C.P. 11590 {dates.time_span(starts, ends, CITY, 'en')}. "
        "Please store water in advance."
    ]
    await asyncio.sleep(0.2)  # nothing else arrives
    assert len(handset(simulator, "+525511110002")) == 1
    assert handset(simulator, "+525511110003") == [] and handset(simulator, "+525511110004") == []


async def test_traffic_alert_notice_and_emergency(gateway, api, simulator):
    subscribe(gateway, "+525522220001", "VIAL", ["Tacubaya"])
    subscribe(gateway, "+525522220002", "AVISOS", ["Tacubaya"])
    subscribe(gateway, "+525522220003", "EMERGENCIA", ["Escandón I Sección"])
    subscribe(gateway, "+525522220004", "EMERGENCIA", [])  # every zone
    posts = [
        {"id": "vial-1", "type": "traffic.alert", "area": {"zones": ["Tacubaya"]},
         "notice": {"text": "Cierre de Av. Revolución por obras."}},
        {"id": "aviso-1", "type": "notice", "area": {"zones": ["tacubaya"]},
         "notice": {"text": "Jornada de vacunación en el deportivo."}},
        {"id": "sismo-1", "type": "emergency.alert", "notice": {"text": "Simulacro a las 12:00."}},
    ]  # fmt: skip
    for event in posts:
        status, body = await api.post_event(event)
        assert status == 202, body
    assert await wait_handset(simulator, "+525522220001") == [
        "Aviso vial en Tacubaya: Cierre de Av. Revolucion por obras."
    ]
    assert await wait_handset(simulator, "+525522220002") == [
        "Aviso para Tacubaya: Jornada de vacunacion en el deportivo."
    ]
    for number in ("+525522220003", "+525522220004"):
        assert await wait_handset(simulator, number) == ["EMERGENCIA: Simulacro a las 12:00."]


async def test_opted_out_subscriber_gets_nothing(gateway, api, simulator):
    subscribe(gateway, "+525533330001", "AGUA", ["Anzures"])
    citizen = subscribe(gateway, "+525533330002", "AGUA", ["Anzures"])
    from sqlalchemy import update

    from gateway.store.models import citizens

    with gateway.db.engine.begin() as conn:
        conn.execute(update(citizens).where(citizens.c.id == citizen).values(opted_out=True))
    starts, ends = _future(1, 8, 0), _future(1, 12, 0)
    status, body = await api.post_event(
        {"id": "agua-oo", "type": "water.outage", "area": {"zones": ["Anzures"]},
         "notice": {"starts_at": _local(starts), "ends_at": _local(ends)}}
    )  # fmt: skip
    assert status == 202 and body["recipients"] == 1
    assert len(await wait_handset(simulator, "+525533330001")) == 1
    await asyncio.sleep(0.2)
    assert handset(simulator, "+525533330002") == []
    with gateway.db.engine.connect() as conn:
        assert citizen_id_of(conn, "+525533330002") == citizen


async def test_reminder_jobs_survive_a_restart_and_fire(db_url, simulator, monkeypatch):
    settings = gateway_settings(db_url, carrier_ports(simulator))
    runtime = build(settings)
    await runtime.start()
    api = Api(runtime.url)
    at = _future(days=3)
    try:
        assert await runtime.pool.wait_bound(5)
        status, body = await api.post_event(
            case_event(
                "e-rem", "appointment.scheduled", appointment={"at": _local(at), "place": "Módulo Tacuba"}
            )
        )
        assert status == 202, body
    finally:
        await api.close()
        await runtime.stop()

    runtime = build(settings)
    await runtime.start()
    api = Api(runtime.url)
    try:
        assert await runtime.pool.wait_bound(5)
        assert reminders_due(runtime) == [(True, True, "pending")]  # kept across the restart
        # a controlled clock: 24 h before the appointment
        moment = (at - timedelta(hours=24)).astimezone(UTC).replace(tzinfo=None)
        monkeypatch.setattr(clock, "utcnow", lambda: moment)
        assert await runtime.links.reminders.run_once() == 1
        texts = await wait_handset(simulator, ANA, 2)
        when = dates.long_datetime(at, CITY, "es")
        assert (
            texts[-1] == f"Recordatorio: su cita por el reporte MH-2026-004512 es el {when} en Modulo Tacuba."
        )
        assert await runtime.links.reminders.run_once() == 0  # sent once; the 2 h one is not due yet
    finally:
        await api.close()
        await runtime.stop()


async def test_the_crm_gets_signed_status_callbacks(db_url, simulator):
    from aiohttp import web

    from gateway.http.signing import verify

    received: list[dict] = []
    got = asyncio.Event()

    async def crm(request: web.Request) -> web.Response:
        body = await request.read()
        verified = verify(request.headers, request.method, request.raw_path, body, {"smsgw": "test-secret"})
        assert verified.client_id == "smsgw"
        received.append(json.loads(body))
        if {r["status"] for r in received} >= {"submitted", "delivered"}:
            got.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/status", crm)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    settings = gateway_settings(db_url, carrier_ports(simulator))
    settings.crm_clients[0].callback_url = f"http://127.0.0.1:{port}/status"
    runtime = build(settings)
    await runtime.start()
    api = Api(runtime.url)
    try:
        assert await runtime.pool.wait_bound(5)
        status, body = await api.post_event(case_event("cb-1", "case.received"))
        assert status == 202
        await asyncio.wait_for(got.wait(), 10)
        (message_id,) = body["message_ids"]
        assert [(r["type"], r["message_id"], r["event_id"], r["status"]) for r in received] == [
            ("message.status", message_id, "cb-1", "submitted"),
            ("message.status", message_id, "cb-1", "delivered"),
        ]
        assert received[0]["to"] == "+52******5678"
    finally:
        await api.close()
        await runtime.stop()
        await runner.cleanup()
