"""CitizenInbox without SMPP: the decisions about resends, auto-replies, opted-out numbers and
languages, on SQLite and PostgreSQL."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway import clock
from gateway.domain.composer import Composer
from gateway.domain.notices import NoticePolicy
from gateway.domain.subscriptions import Catalogue
from gateway.domain.templates import TemplateRenderer
from gateway.services.citizen_sms import CitizenInbox
from gateway.services.subscriptions import SubscriptionService
from gateway.store import mobile_messages as mobile_messages_store
from gateway.store.models import citizens, consent_events, messages, mobile_messages

CITY = ZoneInfo("America/Mexico_City")
ANA = "+525512345678"


@pytest.fixture
def woken() -> list:
    return []


@pytest.fixture
def inbox(db, woken):
    policy = NoticePolicy(Composer(TemplateRenderer(CITY, "30311")))
    subscriptions = SubscriptionService(Catalogue(policy.zones, policy.languages))
    return CitizenInbox(db, policy, subscriptions, on_queued=lambda: woken.append(1))


def scalar(db, query):
    with db.engine.connect() as conn:
        return conn.execute(query).scalar()


async def test_an_auto_reply_that_says_stop_is_honoured_silently(inbox, db):
    await inbox.handle("telcel", ANA, "ALTA AGUA 11560", clock.utcnow())
    handled = await inbox.handle("telcel", ANA, "STOP - auto reply: I am out of the office", clock.utcnow())
    assert handled.outcome == "opted_out" and handled.suppressed == "auto_reply"
    assert handled.reply_message_id is None
    assert scalar(db, select(citizens.c.opted_out).where(citizens.c.msisdn == ANA))


async def test_an_opted_out_number_gets_answers_to_keywords_only(inbox, db):
    from gateway.store import outbox

    def claim():
        return {m.id for m in db.transaction(lambda conn: outbox.claim(conn, "t", 100, clock.utcnow(), 5))}

    await inbox.handle("telcel", ANA, "BAJA", clock.utcnow())
    unknown = await inbox.handle("telcel", ANA, "hola", clock.utcnow())
    assert unknown.reply_message_id is None and unknown.suppressed == "opted_out"
    help_ = await inbox.handle("telcel", ANA, "AYUDA", clock.utcnow())
    assert help_.reply_message_id in claim()  # a reply goes out although the number opted out
    again = await inbox.handle("telcel", ANA, "baja.", clock.utcnow())
    assert again.outcome == "opted_out" and again.reply_message_id in claim()
    with db.engine.connect() as conn:
        assert list(conn.execute(select(consent_events.c.action)).scalars()) == ["opt_out", "opt_out"]


async def test_a_sender_that_is_no_mexican_mobile_is_stored_and_not_answered(inbox, db, woken):
    handled = await inbox.handle("telcel", "+12125550100", "HELP", clock.utcnow())
    assert handled.outcome == "not_a_mobile" and handled.reply_message_id is None
    assert scalar(db, select(mobile_messages.c.text)) == "HELP"
    assert scalar(db, select(citizens.c.id)) is None and scalar(db, select(messages.c.id)) is None
    assert woken == []


async def test_the_reply_language_follows_the_keyword_or_the_citizen(inbox, db):
    await inbox.handle("telcel", "+525512340001", "hola", clock.utcnow())  # a new citizen: Spanish
    english = await inbox.handle("telcel", "+525512340001", "HELP", clock.utcnow())
    assert english.reply_text.startswith("Miguel Hidalgo alerts")
    neutral = await inbox.handle("telcel", "+525512340001", "INFO", clock.utcnow())
    assert neutral.reply_text.startswith("Avisos Miguel Hidalgo")  # INFO: the citizen's language
    await inbox.handle("telcel", "+525512340002", "START AGUA", clock.utcnow())  # new, by START: English
    neutral = await inbox.handle("telcel", "+525512340002", "INFO", clock.utcnow())
    assert neutral.reply_text.startswith("Miguel Hidalgo alerts")


async def test_a_resend_is_the_same_text_as_the_latest_message_again(inbox, db):
    from datetime import timedelta

    from gateway.store.models import subscriptions

    start = clock.utcnow()

    def at(seconds: float):
        return start + timedelta(seconds=seconds)

    first = await inbox.handle("telcel", ANA, "ALTA AGUA 11410", at(0))
    assert first.outcome == "subscribed"
    resent = await inbox.handle("telcel", ANA, "ALTA AGUA 11410", at(5))  # the SMSC's resend
    assert resent.outcome == "duplicate" and resent.reply_message_id is None
    baja = await inbox.handle("telcel", ANA, "BAJA", at(30))
    assert baja.outcome == "opted_out"
    assert (await inbox.handle("telcel", ANA, "BAJA", at(31))).outcome == "duplicate"
    again = await inbox.handle("telcel", ANA, "ALTA AGUA 11410", at(60))  # BAJA came between
    assert again.outcome == "subscribed" and again.reply_message_id is not None
    assert not scalar(db, select(citizens.c.opted_out).where(citizens.c.msisdn == ANA))
    assert scalar(db, select(subscriptions.c.topic)) == "AGUA"
    later = await inbox.handle("telcel", ANA, "ALTA AGUA 11410", at(60 + 121))  # outside the window
    assert later.outcome == "subscribed"
    with db.engine.connect() as conn:
        actions = list(conn.execute(select(consent_events.c.action).order_by(consent_events.c.id)).scalars())
    assert actions == ["subscribe", "opt_out", "opt_in", "subscribe", "subscribe"]
    counts = db.transaction(mobile_messages_store.outcome_counts, ANA, start)
    assert counts == {"subscribed": 3, "duplicate": 2, "opted_out": 1}
