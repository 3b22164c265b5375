"""Accepting case events in batches (group commit), on SQLite and PostgreSQL: the cases table follows
the events, the enrolment line, quiet hours and validity at intake, one bad event in a batch."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from gateway.domain.catalog import REQUIRED_FIELDS
from gateway.domain.composer import Composer
from gateway.domain.events import parse_event
from gateway.domain.notices import NoticePolicy
from gateway.domain.templates import TemplateRenderer
from gateway.domain.timing import QuietHours
from gateway.store import subscriptions
from gateway.store.citizens import upsert_citizen
from gateway.store.intake import IntakeBatcher, accept_events
from gateway.store.models import cases, events, message_status_history, messages

CITY = ZoneInfo("America/Mexico_City")
NOW = datetime(2026, 11, 30, 16, 0)
ENROLMENT = "Responda ALTA AGUA para avisos de cortes de agua en su colonia."


@pytest.fixture
def policy() -> NoticePolicy:
    return NoticePolicy(Composer(TemplateRenderer(CITY, "30311")), enrolment=True)


def prepare(policy, data: dict, now: datetime = NOW):
    return policy.prepare("cesac", parse_event(data, REQUIRED_FIELDS), data, now)


def event(event_id: str, type_: str = "case.received", folio: str = "A1", msisdn: str = "5512345678", **case):
    return {"id": event_id, "type": type_, "case": {"folio": folio, **case}, "citizen": {"msisdn": msisdn}}


def all_messages(db) -> list[dict]:
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(messages).order_by(messages.c.id)).mappings()]


def test_the_cases_table_follows_the_events(db, policy):
    batch = [
        event("e1", category="Fuga de agua"),
        event("e2", "case.status_changed", status="En proceso", progress=40),
        event("e3", "case.resolved", resolution_date="2026-12-02"),
        event("e4", "case.closed"),
    ]
    results = db.transaction(accept_events, [prepare(policy, e) for e in batch], policy, NOW)
    assert [r.created for r in results] == [True] * 4
    assert all(len(r.response["message_ids"]) == 1 for r in results)
    with db.engine.connect() as conn:
        row = conn.execute(select(cases)).mappings().one()
    assert (row["category"], row["status"], row["progress"]) == ("Fuga de agua", "En proceso", 40)
    assert row["resolved_on"] == date(2026, 12, 2) and row["closed_at"] == NOW


def test_the_enrolment_line_goes_on_the_first_message_of_the_first_case_when_it_fits(db, policy):
    db.transaction(
        accept_events, [prepare(policy, event("e1")), prepare(policy, event("e2", folio="A2"))], policy, NOW
    )
    texts = [m["body"] for m in all_messages(db)]
    assert texts[0].endswith(ENROLMENT) and len(texts[0]) <= 160
    assert not texts[1].endswith(ENROLMENT)  # a second case: no offer
    later = db.transaction(accept_events, [prepare(policy, event("e3", "case.closed"))], policy, NOW)
    assert later[0].created and not all_messages(db)[-1]["body"].endswith(ENROLMENT)
    # a long first message keeps its single part: no offer
    db.transaction(
        accept_events,
        [
            prepare(
                policy,
                event(
                    "e4",
                    folio="MH-2026-MIGUEL-HIDALGO-004512-XYZ",
                    msisdn="5523456789",
                    category="Fuga de agua",
                ),
            )
        ],
        policy,
        NOW,
    )
    last = all_messages(db)[-1]
    assert not last["body"].endswith(ENROLMENT) and last["segments"] == 1


def test_no_enrolment_offer_to_a_subscriber_or_when_disabled(db, policy):
    def subscribed(conn):
        citizen_id, _, _ = upsert_citizen(conn, "+525512345678", "es", None, NOW)
        subscriptions.subscribe(conn, citizen_id, "AGUA", None, NOW)

    db.transaction(subscribed)
    db.transaction(accept_events, [prepare(policy, event("e1"))], policy, NOW)
    policy.enrolment = False
    db.transaction(
        accept_events, [prepare(policy, event("e2", folio="B1", msisdn="5523456789"))], policy, NOW
    )
    assert not any(m["body"].endswith(ENROLMENT) for m in all_messages(db))


def test_quiet_hours_hold_case_messages_and_validity_follows_priority(db, policy):
    policy.quiet = QuietHours(time(22), time(7), CITY)
    night = datetime(2026, 12, 1, 5, 30)  # 23:30 in the city
    db.transaction(accept_events, [prepare(policy, event("e1"), night)], policy, night)
    (message,) = all_messages(db)
    assert message["status"] == "held"
    assert message["not_before"] == datetime(2026, 12, 1, 13, 0)  # 07:00 in the city
    assert message["expires_at"] == message["not_before"] + timedelta(hours=24)
    with db.engine.connect() as conn:
        history = conn.execute(select(message_status_history.c.status, message_status_history.c.detail)).one()
    assert history == ("held", "quiet hours: released when they end")


def test_an_appointment_message_is_never_valid_past_the_appointment(db, policy):
    soon = {"at": "2026-11-30T13:00:00-06:00"}  # three hours after NOW
    db.transaction(
        accept_events, [prepare(policy, event("e1", "appointment.scheduled", appointment=soon))], policy, NOW
    )
    (message,) = all_messages(db)
    assert message["priority"] == 1 and message["expires_at"] == datetime(2026, 11, 30, 19, 0)


async def test_concurrent_requests_are_committed_together_and_answered_each(db, policy):
    batcher = IntakeBatcher(db, policy, lambda: NOW)
    items = [prepare(policy, event(f"e{n}", folio=f"F{n}", msisdn=f"55123456{n:02d}")) for n in range(40)]
    items += [prepare(policy, event("e7", folio="F7", msisdn="5512345607"))] * 5  # duplicates in flight
    results = await asyncio.gather(*(batcher.submit(item) for item in items))
    assert sum(r.created for r in results) == 40
    assert {r.response["event_id"] for r in results} == {f"e{n}" for n in range(40)}
    duplicates = [r for r in results if r.response["event_id"] == "e7"]
    assert len({tuple(r.response["message_ids"]) for r in duplicates}) == 1
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 40
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 40


async def test_one_failing_event_does_not_fail_its_batch(db, policy, monkeypatch):
    batcher = IntakeBatcher(db, policy, lambda: NOW)
    good = [prepare(policy, event(f"e{n}", folio=f"F{n}")) for n in range(3)]
    bad = prepare(policy, event("boom", folio="FX"))
    bad.payload = {"not json": {1, 2}}  # cannot be stored: its transaction fails
    results = await asyncio.gather(*(batcher.submit(i) for i in [*good, bad]), return_exceptions=True)
    assert [isinstance(r, Exception) for r in results] == [False, False, False, True]
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 3
