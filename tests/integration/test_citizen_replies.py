"""Citizens answer by SMS: every keyword from the simulator's POST /sim/mo, over SMPP,
through the real gateway, to the reply in the virtual handset's inbox. SQLite and PostgreSQL.

Waiting is event-driven: the gateway's CitizenInbox.handle is wrapped so the test learns when an
MO is committed (and what it did); a reply is awaited on the status writer's commits (the
simulator has the text before the gateway commits its submission).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, insert, select

from gateway import clock
from gateway.domain import dates
from gateway.domain.status import Priority
from gateway.roles import Gateway, build
from gateway.services.citizen_sms import Handled
from gateway.store import outbox
from gateway.store.models import (
    appointments,
    callbacks,
    citizens,
    consent_events,
    message_status_history,
    messages,
    mobile_messages,
    subscriptions,
    zones,
)
from simulator.app import Simulator
from textcodec.encoding import encode_text

from .conftest import Api, carrier_ports, gateway_settings

pytestmark = pytest.mark.integration

CITY = ZoneInfo("America/Mexico_City")


def sms(text: str) -> str:
    """A text as the gateway sends it (á í ó ú transliterated, so it stays GSM-7)."""
    return encode_text(text).text


HELP_ES = (
    "Avisos Miguel Hidalgo: ALTA AGUA, VIAL, EMERGENCIA o AVISOS y su colonia o CP; BAJA para salir; "
    "ESTADO y su folio; SI/NO a una cita. Tel. 55 5658 1111"
)
HELP_EN = (
    "Miguel Hidalgo alerts: START AGUA, VIAL, EMERGENCIA or AVISOS and your colonia or postal code; "
    "STOP to leave; STATUS and your folio. Tel. 55 5658 1111"
)
OPTED_OUT_ES = sms(
    "Cancelamos todos sus avisos: no recibirá más mensajes de este número. "
    "Para volver a suscribirse envíe ALTA al 30311."
)
OPTED_OUT_EN = (
    "You are unsubscribed and will get no more messages from this number. "
    "Text START to 30311 to subscribe again."
)
NOT_FOUND_ES = sms(
    "No encontramos un reporte con ese folio para este número. Revise el folio o llame al 55 5658 1111."
)


class Inbox:
    """Learns, per number, each MO the gateway committed and what it did."""

    def __init__(self, runtime: Gateway):
        self.queues: dict[str, asyncio.Queue] = {}
        original = runtime.inbox.handle

        async def handle(carrier, msisdn, text, received_at):
            result = await original(carrier, msisdn, text, received_at)
            self.queue(msisdn).put_nowait(result)
            return result

        runtime.inbox.handle = handle

    def queue(self, msisdn: str) -> asyncio.Queue:
        return self.queues.setdefault(msisdn, asyncio.Queue())


class Phone:
    """A virtual handset: sends SMS through the simulator's HTTP API, reads its inbox."""

    def __init__(self, number: str, runtime: Gateway, sim: Simulator, inbox: Inbox, http):
        self.number, self.runtime, self.sim, self.inbox, self.http = number, runtime, sim, inbox, http

    def texts(self) -> list[str]:
        now = time.time()
        return [m.as_dict(now)["text"] for m in self.sim.store.messages(to=self.number)]

    async def send(self, text: str, timeout: float = 10) -> Handled:
        async with self.http.post(
            f"{self.sim.http_url}/sim/mo", json={"from": self.number, "text": text}
        ) as r:
            assert r.status == 202, await r.text()
        return await asyncio.wait_for(self.inbox.queue(self.number).get(), timeout)

    async def wait_texts(self, count: int, timeout: float = 10) -> list[str]:
        async def watch() -> list[str]:
            while True:
                commit = asyncio.ensure_future(self.runtime.writer.next_commit())
                texts = self.texts()
                if len(texts) >= count:
                    commit.cancel()
                    return texts
                await commit

        return await asyncio.wait_for(watch(), timeout)

    async def ask(self, text: str) -> str:
        """Send ``text``; the reply it gets (the MO must be answered)."""
        before = len(self.texts())
        handled = await self.send(text)
        assert handled.reply_message_id is not None, handled
        texts = await self.wait_texts(before + 1)
        assert texts[before] == handled.reply_text
        return texts[before]

    async def silent(self, text: str) -> Handled:
        """Send ``text``; it must get no reply (nothing queued for this number)."""
        before = len(self.texts())
        queued = self._queued()
        handled = await self.send(text)
        assert handled.reply_message_id is None, handled
        assert self._queued() == queued and len(self.texts()) == before
        return handled

    def _queued(self) -> int:
        with self.runtime.db.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(messages).where(messages.c.msisdn == self.number)
            ).scalar_one()


@pytest.fixture
async def http():
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    yield session
    await session.close()


@pytest.fixture
async def phones(gateway, simulator, http):
    inbox = Inbox(gateway)
    return lambda number: Phone(number, gateway, simulator, inbox, http)


def rows(runtime: Gateway, query) -> list:
    with runtime.db.engine.connect() as conn:
        return conn.execute(query).all()


def subscribed(runtime: Gateway, number: str) -> set[tuple[str, str | None]]:
    return {
        (topic, name)
        for topic, name in rows(
            runtime,
            select(subscriptions.c.topic, zones.c.name)
            .select_from(
                subscriptions.join(citizens, citizens.c.id == subscriptions.c.citizen_id).outerjoin(
                    zones, zones.c.id == subscriptions.c.zone_id
                )
            )
            .where(citizens.c.msisdn == number),
        )
    }


def ledger(runtime: Gateway, number: str) -> list:
    return rows(
        runtime,
        select(
            consent_events.c.action,
            consent_events.c.channel,
            consent_events.c.carrier,
            consent_events.c.topics,
            consent_events.c.zones,
            consent_events.c.raw,
        )
        .join(citizens, citizens.c.id == consent_events.c.citizen_id)
        .where(citizens.c.msisdn == number)
        .order_by(consent_events.c.id),
    )


def opted_out(runtime: Gateway, number: str) -> bool:
    return bool(rows(runtime, select(citizens.c.opted_out).where(citizens.c.msisdn == number))[0][0])


# --- ALTA / SUSCRIBIR / START ---------------------------------------------------------------------


SUBSCRIBE_CASES = [
    (
        "+525530000001",
        "ALTA AGUA Polanco V Sección",
        "Listo: recibirá avisos de AGUA en Polanco V Sección. Para salir envíe BAJA AGUA (o BAJA para todo).",
        {("AGUA", "Polanco V Sección")},
    ),
    (
        "+525530000002",
        "  suscribir   agua   anáhuac 1a. secc. ",
        "Listo: recibirá avisos de AGUA en Anáhuac I Sección. Para salir envíe BAJA AGUA (o BAJA para todo).",
        {("AGUA", "Anáhuac I Sección")},
    ),
    (
        "+525530000003",
        "Alta vial 11590, Granada",
        "Listo: recibirá avisos de VIAL en C.P. 11590 y Granada. "
        "Para salir envíe BAJA VIAL (o BAJA para todo).",
        {("VIAL", "Anzures"), ("VIAL", "Granada")},
    ),
    (
        "+525530000004",
        "START water polanco 2",
        "Done: you will get AGUA alerts for Polanco II Sección. "
        "To leave, text STOP AGUA (or STOP for everything).",
        {("AGUA", "Polanco II Sección")},
    ),
    (
        "+525530000005",
        "ALTA",
        "Listo: recibirá avisos de todos los temas en todas las colonias. Para salir envíe BAJA.",
        {("AGUA", None), ("VIAL", None), ("EMERGENCIA", None), ("AVISOS", None)},
    ),
    (
        "+525530000006",
        "alta emergencia",
        "Listo: recibirá avisos de EMERGENCIA en todas las colonias. "
        "Para salir envíe BAJA EMERGENCIA (o BAJA para todo).",
        {("EMERGENCIA", None)},
    ),
]


async def test_subscribe_keywords_subscribe_and_reply_how_to_leave(gateway, phones):
    replies = await asyncio.gather(*(phones(n).ask(text) for n, text, _, _ in SUBSCRIBE_CASES))
    for (number, text, expected, wanted), reply in zip(SUBSCRIBE_CASES, replies, strict=True):
        assert reply == sms(expected), text
        assert subscribed(gateway, number) == wanted, text
        (event,) = ledger(gateway, number)
        assert event.action == "subscribe" and event.channel == "sms" and event.carrier == "telcel"
        assert event.raw == text
    english = rows(gateway, select(citizens.c.language).where(citizens.c.msisdn == "+525530000004"))
    assert english == [("en",)]  # a new citizen writing START gets English notices too
    mos = rows(gateway, select(mobile_messages.c.outcome, mobile_messages.c.understood))
    assert {o for o, _ in mos} == {"subscribed"}
    reply = rows(gateway, select(messages.c.priority).where(messages.c.msisdn == "+525530000001"))
    assert reply == [(int(Priority.HIGH),)]


async def test_an_ambiguous_colonia_is_asked_back_and_nothing_is_subscribed(gateway, phones):
    ana = phones("+525530000011")
    assert await ana.ask("ALTA AGUA POLANCO") == sms(
        "Polanco: ¿I, II, III, IV o V Sección? Responda por ejemplo ALTA AGUA POLANCO 2, o con su "
        "código postal. No se suscribió nada aún."
    )
    assert subscribed(gateway, ana.number) == set() and ledger(gateway, ana.number) == []
    assert (await ana.ask("ALTA AGUA POLANCO 2")).startswith(
        sms("Listo: recibirá avisos de AGUA en Polanco II")
    )
    assert subscribed(gateway, ana.number) == {("AGUA", "Polanco II Sección")}
    reply = await phones("+525530000012").ask("alta lomas")
    assert reply.startswith(sms("¿Cuál colonia: Lomas de Chapultepec, Lomas Hermosa, Lomas de Sotelo"))
    assert "Responda por ejemplo ALTA 11000" in reply


async def test_an_unknown_zone_or_topic_says_how_to_find_the_right_one(gateway, phones):
    reply = await phones("+525530000021").ask("ALTA AGUA Narnia")
    assert reply == sms(
        'No reconocimos "NARNIA". Envíe ALTA, un tema (AGUA, VIAL, EMERGENCIA o AVISOS) y su colonia o '
        "código postal (viene en su recibo de luz o agua), por ejemplo ALTA AGUA 11560."
    )
    reply = await phones("+525530000022").ask("ALTA LUZ 11560")
    assert reply.startswith('No reconocimos "LUZ".')
    reply = await phones("+525530000023").ask("START AGUA 99999")
    assert reply.startswith(
        'We did not recognise "99999". Text START, a topic (AGUA, VIAL, EMERGENCIA or AVISOS)'
    )
    for number in ("+525530000021", "+525530000022", "+525530000023"):
        assert subscribed(gateway, number) == set()


async def test_a_misspelt_colonia_is_answered_with_the_nearest_names(gateway, phones):
    ana = phones("+525530000024")
    assert await ana.ask("ALTA AGUA Anzurez") == sms(
        'No reconocimos "ANZUREZ". ¿Quiso decir Anzures? Envíe ALTA AGUA ANZURES'
    )
    assert subscribed(gateway, ana.number) == set()
    assert (await ana.ask("ALTA AGUA ANZURES")).startswith(sms("Listo: recibirá avisos de AGUA en Anzures"))
    luis = phones("+525530000025")
    assert await luis.ask("START Tacubya") == (
        'We did not recognise "TACUBYA". Did you mean Tacuba or Tacubaya? Text START TACUBA'
    )


# --- BAJA / ALTO / STOP / CANCELAR / SALIR --------------------------------------------------------


@pytest.mark.parametrize("keyword", ["BAJA", "alto", "Cancelar.", "SALIR", "baja todo"])
async def test_opt_out_keywords(gateway, phones, keyword):
    ana = phones("+525530000031")
    await ana.ask("ALTA AGUA 11560")
    assert await ana.ask(keyword) == OPTED_OUT_ES
    assert opted_out(gateway, ana.number) and subscribed(gateway, ana.number) == set()
    assert [e.action for e in ledger(gateway, ana.number)] == ["subscribe", "opt_out"]


async def test_unsubscribe_from_one_topic(gateway, phones):
    ana = phones("+525530000041")
    await ana.ask("ALTA AGUA 11560")
    await ana.ask("ALTA VIAL 11560")
    assert await ana.ask("baja agua") == (
        "Ya no recibira avisos de AGUA. Para dejar de recibir todo envie BAJA; para volver, ALTA AGUA."
    )
    assert subscribed(gateway, ana.number) == {("VIAL", "Polanco V Sección")}
    assert not opted_out(gateway, ana.number)
    bob = phones("+525530000042")
    await bob.ask("START VIAL")
    assert await bob.ask("STOP VIAL") == (
        "You will no longer get VIAL alerts. Text STOP to leave everything, or START VIAL to come back."
    )


async def test_after_an_opt_out_a_broadcast_sends_nothing_to_that_number(gateway, phones, api, simulator):
    ana, luis = phones("+525530000051"), phones("+525530000052")
    await ana.ask("ALTA AGUA Polanco V Sección")
    await luis.ask("ALTA AGUA 11560")
    assert await ana.ask("STOP") == OPTED_OUT_EN
    starts = datetime.now(UTC) + timedelta(days=1)
    status, body = await api.post_event(
        {
            "id": "agua-opt-out",
            "type": "water.outage",
            "area": {"zones": ["Polanco V Sección"]},
            "notice": {"starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=8)).isoformat()},
        }
    )
    assert status == 202, body
    assert body["recipients"] == 1  # Luis only
    texts = await luis.wait_texts(2)
    assert texts[1].startswith(sms("Corte de agua en Polanco V Sección"))
    (broadcast_id,) = rows(
        gateway, select(messages.c.broadcast_id).where(messages.c.broadcast_id.is_not(None))
    )[0]
    await api.wait_status(gateway, (await _message_of(gateway, luis.number, broadcast_id)), "delivered")
    assert len(ana.texts()) == 2  # the subscription and the opt-out confirmation, nothing else
    assert (
        rows(
            gateway,
            select(messages.c.id).where(
                messages.c.msisdn == ana.number, messages.c.broadcast_id.is_not(None)
            ),
        )
        == []
    )


async def _message_of(runtime, number, broadcast_id) -> int:
    return rows(
        runtime,
        select(messages.c.id).where(messages.c.msisdn == number, messages.c.broadcast_id == broadcast_id),
    )[0][0]


async def test_opt_out_cancels_what_is_waiting_and_the_claim_never_sends_it(gateway, phones):
    ana = phones("+525530000061")
    await ana.ask("ALTA AGUA 11560")
    now = clock.utcnow()
    (citizen_id,) = rows(gateway, select(citizens.c.id).where(citizens.c.msisdn == ana.number))[0]

    def queue(conn):
        base = {"citizen_id": citizen_id, "msisdn": ana.number, "language": "es", "encoding": "gsm7",
                "segments": 1, "priority": 2, "expires_at": now + timedelta(hours=12)}  # fmt: skip
        later = outbox.enqueue(conn, [{**base, "body": "later", "not_before": now + timedelta(hours=1)}], now)
        held = outbox.enqueue(conn, [{**base, "body": "night", "status": "held"}], now)
        return later + held

    waiting = gateway.db.transaction(queue)
    assert await ana.ask("BAJA") == OPTED_OUT_ES
    statuses = rows(
        gateway, select(messages.c.status, messages.c.error_text).where(messages.c.id.in_(waiting))
    )
    assert statuses == [("cancelled", "opted out")] * 2
    details = rows(
        gateway,
        select(message_status_history.c.detail).where(
            message_status_history.c.message_id.in_(waiting), message_status_history.c.status == "cancelled"
        ),
    )
    assert details == [("opted out",)] * 2

    # a message that slipped in after the opt-out (a fan-out chunk racing it) is never claimed
    def slip(conn):
        return outbox.enqueue(conn, [{"citizen_id": citizen_id, "msisdn": ana.number, "language": "es",
                                      "body": "late", "encoding": "gsm7", "segments": 1, "priority": 0,
                                      "expires_at": now + timedelta(hours=1)}], now)[0]  # fmt: skip

    late = gateway.db.transaction(slip)
    claimed = gateway.db.transaction(lambda conn: outbox.claim(conn, "test", 100, clock.utcnow(), 5))
    assert late not in [m.id for m in claimed]
    assert ana.texts()[-1] == OPTED_OUT_ES


async def test_start_after_an_opt_out_is_explicit_consent(gateway, phones):
    ana = phones("+525530000071")
    await ana.ask("ALTA AGUA 11560")
    await ana.ask("BAJA")
    assert await ana.ask("START") == ("Done: you will get all alerts for every area. To leave, text STOP.")
    assert not opted_out(gateway, ana.number)
    assert [e.action for e in ledger(gateway, ana.number)] == ["subscribe", "opt_out", "opt_in", "subscribe"]
    assert {t for t, _ in subscribed(gateway, ana.number)} == {"AGUA", "VIAL", "EMERGENCIA", "AVISOS"}


# --- AYUDA / HELP / INFO --------------------------------------------------------------------------


async def test_help_keywords_fit_one_segment(gateway, phones):
    replies = await asyncio.gather(
        phones("+525530000081").ask("AYUDA"),
        phones("+525530000082").ask("¿ayuda?"),
        phones("+525530000083").ask("help"),
        phones("+525530000084").ask("Info"),
    )
    assert replies == [HELP_ES, HELP_ES, HELP_EN, HELP_ES]
    segments = rows(gateway, select(messages.c.segments, messages.c.encoding))
    assert set(segments) == {(1, "gsm7")}
    now = time.time()
    for number in ("+525530000081", "+525530000083"):
        (message,) = phones(number).sim.store.messages(to=number)
        assert message.as_dict(now)["parts"] and len(message.as_dict(now)["parts"]) == 1


async def test_handled_citizen_messages_are_counted_on_metrics(gateway, phones, http):
    await phones("+525530000085").ask("AYUDA")
    async with http.get(f"{gateway.url}/metrics") as resp:
        lines = (await resp.text()).splitlines()
    assert 'smsgw_citizen_messages_handled_total{outcome="help"} 1' in lines


# --- ESTADO / FOLIO -------------------------------------------------------------------------------


async def test_a_folio_is_answered_only_to_its_owner(gateway, phones, api):
    ana, eve = phones("+525512345678"), phones("+525530000091")
    status, body = await api.post_event(
        {
            "id": "case-1",
            "type": "case.status_changed",
            "case": {
                "folio": "MH-2026-004512",
                "status": "En proceso",
                "progress": 60,
                "category": "Fuga de agua",
            },
            "citizen": {"msisdn": "55 1234 5678", "language": "es"},
        }
    )
    assert status == 202, body
    await ana.wait_texts(1)
    expected = "Reporte MH-2026-004512 (Fuga de agua): En proceso, avance 60%."
    assert await ana.ask("ESTADO MH-2026-004512") == expected
    assert await ana.ask("folio: mh 2026 004512") == expected  # case, spaces and punctuation ignored
    not_owner = await eve.ask("ESTADO MH-2026-004512")
    unknown = await eve.ask("FOLIO MH-2099-000001")
    assert not_owner.encode() == unknown.encode() == NOT_FOUND_ES.encode()
    assert await eve.ask("ESTADO") == "Envie ESTADO y su numero de folio, por ejemplo ESTADO MH-2026-004512."
    assert await phones("+525530000092").ask("STATUS MH-2026-004512") == (
        "We found no report with that folio for this number. Check the folio or call 55 5658 1111."
    )


# --- SI / NO --------------------------------------------------------------------------------------


def _appointment_event(event_id: str, number: str, folio: str, at: datetime) -> dict:
    return {
        "id": event_id,
        "type": "appointment.scheduled",
        "case": {"folio": folio, "appointment": {"at": at.isoformat(), "place": "Módulo Tacuba"}},
        "citizen": {"msisdn": number, "language": "es"},
    }


@pytest.fixture
async def crm_gateway(db_url, simulator):
    """A gateway whose CRM client has a callback URL (nothing listens: callbacks stay queued)."""
    settings = gateway_settings(db_url, carrier_ports(simulator))
    settings.crm_clients[0].callback_url = "http://127.0.0.1:9/callbacks"
    runtime = build(settings)
    await runtime.start()
    assert await runtime.pool.wait_bound(5)
    yield runtime
    await runtime.stop()


ANSWERS = [("SI", "confirmed"), ("Sí.", "confirmed"), ("confirmo", "confirmed"), ("No", "declined"),
           ("no puedo ir", "declined")]  # fmt: skip


@pytest.mark.parametrize(("answer", "status"), ANSWERS)
async def test_si_no_answer_the_pending_appointment_and_tell_the_crm(
    crm_gateway, simulator, http, answer, status
):
    inbox = Inbox(crm_gateway)
    ana = Phone("+525530000101", crm_gateway, simulator, inbox, http)
    api = Api(crm_gateway.url)
    at = datetime.now(CITY).replace(microsecond=0) + timedelta(days=3)
    code, body = await api.post_event(_appointment_event("apt-1", "55 3000 0101", "MH-2026-000101", at))
    await api.close()
    assert code == 202, body
    await ana.wait_texts(1)
    reply = await ana.ask(answer)
    when = dates.long_datetime(at, CITY, "es")
    if status == "confirmed":
        assert reply == f"Gracias, confirmo su cita del {when} en Modulo Tacuba (folio MH-2026-000101)."
    else:
        assert reply == (
            f"Registramos que no asistira a su cita del {when} (folio MH-2026-000101). "
            "Para otra fecha llame al 55 5658 1111."
        )
    assert rows(crm_gateway, select(appointments.c.status)) == [(status,)]
    kinds = rows(
        crm_gateway,
        select(callbacks.c.kind, callbacks.c.payload).where(callbacks.c.kind.like("appointment.%")),
    )
    assert [k for k, _ in kinds] == [f"appointment.{status}"]
    assert kinds[0][1]["folio"] == "MH-2026-000101" and kinds[0][1]["event_id"] == "apt-1"
    assert await ana.ask("si, ahi estare") == HELP_ES  # nothing pending any more: the help text


# --- anything else: the loop guard ----------------------------------------------------------------


@pytest.fixture
def controlled_clock(monkeypatch):
    offset = [timedelta(0)]
    real = clock.utcnow

    def now():
        return real() + offset[0]

    monkeypatch.setattr(clock, "utcnow", now)
    return offset


async def test_unknown_text_gets_the_help_once_an_hour_and_auto_replies_none(
    gateway, phones, controlled_clock
):
    ana = phones("+525530000111")
    assert await ana.ask("hola, ¿qué es esto?") == HELP_ES
    quiet = await ana.silent("buenas tardes")
    assert quiet.outcome == "unknown" and quiet.suppressed == "help_recently_sent"
    controlled_clock[0] = timedelta(minutes=59)
    assert (await ana.silent("oiga")).suppressed == "help_recently_sent"
    controlled_clock[0] = timedelta(minutes=61)
    assert await ana.ask("sigo sin entender") == HELP_ES
    controlled_clock[0] = timedelta(hours=3)
    robot = await ana.silent("Respuesta automática: no estoy disponible, le contesto luego")
    assert robot.outcome == "auto_reply" and robot.suppressed == "auto_reply"
    robot = await ana.silent("Auto-reply: I am out of the office")
    assert robot.outcome == "auto_reply"
    # keywords are still answered within the hour (only texts not understood are limited)
    assert await ana.ask("AYUDA") == HELP_ES


@pytest.fixture
async def capped_gateway(db_url, simulator):
    settings = gateway_settings(db_url, carrier_ports(simulator))
    settings.replies.max_per_day = 3
    runtime = build(settings)
    await runtime.start()
    assert await runtime.pool.wait_bound(5)
    yield runtime
    await runtime.stop()


async def test_no_number_gets_more_than_the_daily_replies(capped_gateway, simulator, http, controlled_clock):
    inbox = Inbox(capped_gateway)
    bot = Phone("+525530000121", capped_gateway, simulator, inbox, http)
    for text in ("AYUDA", "ayuda", "HELP"):
        await bot.ask(text)
    assert (await bot.silent("INFO")).suppressed == "capped"
    handled = await bot.silent("BAJA")  # the opt-out still happens, without a reply
    assert handled.outcome == "opted_out" and opted_out(capped_gateway, bot.number)
    controlled_clock[0] = timedelta(hours=24, minutes=1)
    assert await bot.ask("ALTA AGUA 11560")  # a day later: answered again (and opted in)


async def test_a_resent_mo_is_not_acted_on_twice(gateway, phones):
    ana = phones("+525530000131")
    await ana.ask("ALTA AGUA 11560")
    now = clock.utcnow()
    again = await gateway.inbox.handle("telcel", ana.number, "ALTA AGUA 11560", now)
    assert again.outcome == "duplicate" and again.reply_message_id is None
    assert len(ledger(gateway, ana.number)) == 1


async def test_a_citizen_who_changes_their_mind_within_the_window_is_answered_each_time(gateway, phones):
    ana = phones("+525530000132")
    assert (await ana.ask("ALTA AGUA 11410")).startswith(sms("Listo: recibirá avisos de AGUA en C.P. 11410"))
    assert await ana.ask("BAJA") == OPTED_OUT_ES
    assert opted_out(gateway, ana.number)
    again = await ana.ask("ALTA AGUA 11410")  # the same text, but BAJA came between: a new message
    assert again.startswith(sms("Listo: recibirá avisos de AGUA en C.P. 11410"))
    assert not opted_out(gateway, ana.number)
    assert {topic for topic, _ in subscribed(gateway, ana.number)} == {"AGUA"}
    actions = [row.action for row in ledger(gateway, ana.number)]
    assert actions == ["subscribe", "opt_out", "opt_in", "subscribe"]


# --- long and UCS-2 messages ----------------------------------------------------------------------


async def test_long_and_ucs2_messages_are_reassembled_before_parsing(gateway, phones, simulator):
    codes = ["11000", "11040", "11200", "11220", "11230", "11240", "11250", "11260", "11510", "11530",
             "11540", "11550", "11560", "11580", "11590", "11800", "11820", "11830", "11840", "11850",
             "11860", "11870"]  # fmt: skip
    known = {cp for (cp,) in rows(gateway, select(zones.c.cp))}
    codes = [c for c in codes if c in known]
    long_gsm = "ALTA AGUA " + ", ".join(codes)
    assert len(long_gsm) > 160
    ana = phones("+525530000141")
    reply = await ana.ask(long_gsm)
    assert reply.startswith(sms("Listo: recibirá avisos de AGUA en C.P. 11000"))
    mo = simulator.store.mo(ana.number)[0]
    assert mo.parts > 1 and mo.encoding == "gsm7"
    assert {z for _, z in subscribed(gateway, ana.number)} == {
        n for (n,) in rows(gateway, select(zones.c.name).where(zones.c.cp.in_(codes)))
    }
    luis = phones("+525530000142")
    assert (await luis.ask("ALTA AGUA Anáhuac I Sección")).startswith(
        sms("Listo: recibirá avisos de AGUA en Anáhuac I")
    )
    assert simulator.store.mo(luis.number)[0].encoding == "ucs2"
    eva = phones("+525530000143")
    long_ucs2 = "ALTA AGUA Anáhuac I Sección, Anáhuac II Sección, Polanco V Sección, Anzures y Granada"
    assert len(long_ucs2) > 70
    await eva.ask(long_ucs2)
    mo = simulator.store.mo(eva.number)[0]
    assert mo.parts > 1 and mo.encoding == "ucs2"
    assert {z for _, z in subscribed(gateway, eva.number)} == {
        "Anáhuac I Sección",
        "Anáhuac II Sección",
        "Polanco V Sección",
        "Anzures",
        "Granada",
    }


async def test_every_mo_is_stored_with_what_it_was_understood_as(gateway, phones):
    ana = phones("+525530000151")
    await ana.ask("ALTA AGUA polanco 2")
    await ana.ask("ESTADO MH-1")
    (first, second) = rows(
        gateway,
        select(
            mobile_messages.c.text,
            mobile_messages.c.carrier,
            mobile_messages.c.keyword,
            mobile_messages.c.intent,
            mobile_messages.c.understood,
            mobile_messages.c.outcome,
            mobile_messages.c.reply_kind,
        ).order_by(mobile_messages.c.id),
    )
    assert first.text == "ALTA AGUA polanco 2" and first.carrier == "telcel" and first.keyword == "ALTA"
    assert (
        first.intent == "subscribe"
        and first.outcome == "subscribed"
        and first.reply_kind == "reply.subscribed"
    )
    assert first.understood["topic"] == "AGUA" and first.understood["zones_written"] == ["POLANCO 2"]
    assert [z["name"] for z in first.understood["zones"]] == ["Polanco II Sección"]
    assert second.understood["folio"] == "MH-1" and second.outcome == "status_not_found"
    assert rows(gateway, select(func.count()).select_from(insert(mobile_messages).table)) == [(2,)]
