"""Broadcast fan-out inside the database, on SQLite and PostgreSQL: recipients (topic, zones, opt-out,
one copy per number), chunks that resume after a crash without duplicates, cancel, priorities,
quiet hours."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.domain.catalog import REQUIRED_FIELDS
from gateway.domain.composer import Composer
from gateway.domain.events import parse_event
from gateway.domain.notices import NoticePolicy
from gateway.domain.templates import TemplateRenderer
from gateway.domain.timing import QuietHours
from gateway.store import broadcasts, outbox, subscriptions
from gateway.store.citizens import upsert_citizen
from gateway.store.intake import accept_events
from gateway.store.models import citizens, message_status_history, messages
from gateway.store.zones import ids_of, sync_zones

CITY = ZoneInfo("America/Mexico_City")
NOW = datetime(2026, 11, 30, 16, 0)  # 10:00 in the city
WINDOW = {"starts_at": "2026-12-01T08:00:00-06:00", "ends_at": "2026-12-01T18:00:00-06:00"}


@pytest.fixture
def policy(db) -> NoticePolicy:
    p = NoticePolicy(Composer(TemplateRenderer(CITY, "30311")))
    p.zone_ids = db.transaction(sync_zones, p.zones, NOW)
    return p


def add(
    db, policy, msisdn: str, topic: str, zones: list[str], language: str = "es", opted_out: bool = False
) -> int:
    def work(conn):
        citizen_id, _, _ = upsert_citizen(conn, msisdn, language, None, NOW)
        wanted = [z for name in zones for z in policy.zones.match(name, partial=False)]
        subscriptions.subscribe(conn, citizen_id, topic, ids_of(conn, wanted) if wanted else None, NOW)
        if opted_out:
            conn.execute(update(citizens).where(citizens.c.id == citizen_id).values(opted_out=True))
        return citizen_id

    return db.transaction(work)


def add_many(db, policy, count: int, topic: str, zone: str, first: int = 0) -> None:
    """``count`` subscribers of ``topic`` in ``zone``, inserted in bulk."""
    (zone_id,) = db.transaction(ids_of, policy.zones.match(zone, partial=False)[:1])

    def work(conn):
        conn.execute(
            insert(citizens),
            [
                {"msisdn": f"+5255{first + n:08d}", "language": "es", "created_at": NOW, "updated_at": NOW}
                for n in range(count)
            ],
        )
        ids = conn.execute(select(citizens.c.id).where(citizens.c.msisdn.like("+5255%"))).scalars().all()
        subscriptions_rows = [
            {"citizen_id": i, "topic": topic, "zone_id": zone_id, "created_at": NOW} for i in ids
        ]
        conn.execute(subscriptions._insert(conn), subscriptions_rows)

    db.transaction(work)


def post(db, policy, data: dict, now: datetime = NOW):
    prepared = policy.prepare("cesac", parse_event(data, REQUIRED_FIELDS), data, now)
    (result,) = db.transaction(accept_events, [prepared], policy, now)
    return result


def water(event_id: str = "agua-1", zones=("Polanco", "Anzures")) -> dict:
    return {"id": event_id, "type": "water.outage", "area": {"zones": list(zones)}, "notice": WINDOW}


def fan_out(db, broadcast_id: int, chunk: int = 1000, now: datetime = NOW) -> int:
    total = 0
    while True:
        result = db.transaction(broadcasts.fanout_chunk, broadcast_id, chunk, now)
        total += result.inserted
        if result.finished:
            return total


def rows(db, broadcast_id: int) -> list[dict]:
    with db.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(messages).where(messages.c.broadcast_id == broadcast_id).order_by(messages.c.id)
            ).mappings()
        ]


def test_subscribers_in_the_zones_get_one_copy_each_and_opted_out_none(db, policy):
    a = add(db, policy, "+525511110001", "AGUA", ["Polanco V", "Anzures", "11590"])  # three matching rows
    b = add(db, policy, "+525511110002", "AGUA", ["Anzures"])
    add(db, policy, "+525511110003", "AGUA", ["Tacubaya"])  # elsewhere
    add(db, policy, "+525511110004", "AGUA", ["Anzures"], opted_out=True)
    add(db, policy, "+525511110005", "VIAL", ["Anzures"])  # another topic
    f = add(db, policy, "+525511110006", "AGUA", [])  # every zone
    g = add(db, policy, "+525511110007", "AGUA", ["Polanco I"], language="en")

    result = post(db, policy, water())
    assert result.response["recipients"] == 4 and result.response["message_ids"] == []
    broadcast_id = result.broadcast_id
    assert fan_out(db, broadcast_id) == 4
    queued = rows(db, broadcast_id)
    assert sorted(m["citizen_id"] for m in queued) == sorted([a, b, f, g])
    english = next(m for m in queued if m["citizen_id"] == g)
    assert english["language"] == "en" and english["body"].startswith("Water cut in Polanco and Anzures")
    spanish = next(m for m in queued if m["citizen_id"] == a)
    assert spanish["body"].startswith(
        "Corte de agua en Polanco y Anzures el martes 1 de diciembre de 08:00 a 18:00"
    )
    assert {(m["status"], m["priority"], m["encoding"], m["segments"]) for m in queued} == {
        ("queued", 1, "gsm7", 1)
    }
    assert all(m["expires_at"] == NOW + timedelta(hours=12) for m in queued)  # high priority: 12 h
    with db.engine.connect() as conn:
        history = conn.execute(
            select(func.count())
            .select_from(message_status_history)
            .where(message_status_history.c.status == "queued")
        ).scalar_one()
    assert history == 4
    info = db.transaction(broadcasts.get, broadcast_id)
    assert (info["status"], info["queued"], info["messages"]) == ("done", 4, {"queued": 4})
    assert (
        info["zone_names"][:2] == ["Polanco I Sección", "Polanco II Sección"]
        and "Anzures" in info["zone_names"]
    )


def test_the_fan_out_resumes_after_a_crash_without_duplicates(db, policy):
    add_many(db, policy, 250, "AGUA", "Anzures")
    result = post(db, policy, water(zones=["Anzures"]))
    bid = result.broadcast_id
    assert result.response["recipients"] == 250

    first = db.transaction(broadcasts.fanout_chunk, bid, 100, NOW)
    assert (first.inserted, first.status) == (100, "running")
    # a crash in the middle of the next chunk: its transaction never commits
    with db.engine.connect() as conn:
        trans = conn.begin()
        assert broadcasts.fanout_chunk(conn, bid, 100, NOW).inserted == 100
        trans.rollback()
    assert len(rows(db, bid)) == 100
    # the restarted process goes on from the last committed chunk
    assert fan_out(db, bid, chunk=100) == 150
    queued = rows(db, bid)
    assert len(queued) == 250 == len({m["citizen_id"] for m in queued})
    assert db.transaction(broadcasts.get, bid)["queued"] == 250
    # even a lost cursor cannot queue a second copy: the unique index refuses it
    with db.engine.begin() as conn:
        conn.execute(update(broadcasts.broadcasts).values(status="running", last_citizen_id=0))
    with pytest.raises(IntegrityError):
        db.transaction(broadcasts.fanout_chunk, bid, 100, NOW)
    assert len(rows(db, bid)) == 250


def test_cancel_stops_the_fan_out_and_cancels_what_is_queued(db, policy):
    add_many(db, policy, 120, "AGUA", "Anzures")
    bid = post(db, policy, water(zones=["Anzures"])).broadcast_id
    db.transaction(broadcasts.fanout_chunk, bid, 50, NOW)
    claimed = db.transaction(outbox.claim, "node-a", 5, NOW, 60)  # in flight: not cancellable
    result = db.transaction(broadcasts.cancel, bid, NOW)
    assert result["cancelled"] == 45
    assert db.transaction(broadcasts.fanout_chunk, bid, 50, NOW).inserted == 0
    info = db.transaction(broadcasts.get, bid)
    assert info["status"] == "cancelled" and info["messages"] == {"cancelled": 45, "queued": 5}
    assert len(claimed) == 5
    with db.engine.connect() as conn:
        details = conn.execute(
            select(message_status_history.c.detail).where(message_status_history.c.status == "cancelled")
        ).scalars()
        assert set(details) == {"broadcast cancelled by an operator"}


def test_an_emergency_overtakes_every_queued_water_notice(db, policy):
    add_many(db, policy, 300, "AGUA", "Anzures")
    add(db, policy, "+525599990001", "EMERGENCIA", ["Tacubaya"])
    add(db, policy, "+525599990002", "EMERGENCIA", [])
    fan_out(db, post(db, policy, water(zones=["Anzures"])).broadcast_id)
    assert len(db.transaction(outbox.claim, "n", 10, NOW, 60)) == 10
    alert = {"id": "sismo", "type": "emergency.alert", "notice": {"text": "Sismo"}}
    emergency = post(db, policy, alert)
    assert emergency.response["recipients"] == 2
    fan_out(db, emergency.broadcast_id)
    nxt = db.transaction(outbox.claim, "n", 10, NOW, 60)
    assert [m.priority for m in nxt[:2]] == [0, 0] and {m.priority for m in nxt[2:]} == {1}
    assert {m.msisdn for m in nxt[:2]} == {"+525599990001", "+525599990002"}


def test_unfinished_broadcasts_come_most_urgent_first(db, policy):
    add(db, policy, "+525599990001", "EMERGENCIA", [])
    add(db, policy, "+525599990002", "AGUA", ["Anzures"])
    water_id = post(db, policy, water(zones=["Anzures"])).broadcast_id
    alert_id = post(db, policy, {"id": "s", "type": "emergency.alert", "notice": {"text": "x"}}).broadcast_id
    assert db.transaction(broadcasts.unfinished) == [(alert_id, 0), (water_id, 1)]


def test_emergency_without_zones_may_go_to_every_citizen(db, policy):
    add(db, policy, "+525599990001", "AGUA", ["Anzures"])
    add(db, policy, "+525599990002", "EMERGENCIA", ["Tacubaya"])
    add(db, policy, "+525599990003", "VIAL", [], opted_out=True)
    db.transaction(lambda conn: upsert_citizen(conn, "+525599990004", None, None, NOW))  # a case's citizen
    alert = {"id": "s1", "type": "emergency.alert", "notice": {"text": "x"}}
    assert post(db, policy, alert).response["recipients"] == 1  # default: EMERGENCIA subscribers
    policy.emergency_scope = "citizens"
    result = post(db, policy, {**alert, "id": "s2"})
    assert result.response["recipients"] == 3
    assert fan_out(db, result.broadcast_id) == 3


def test_a_broadcast_at_night_is_held_until_morning_and_released_in_order(db, policy):
    policy.quiet = QuietHours(time(22), time(7), CITY)
    add_many(db, policy, 30, "AVISOS", "Anzures")
    add(db, policy, "+525599990001", "EMERGENCIA", [])
    night = datetime(2026, 12, 1, 5, 0)  # 23:00 in the city
    notice = {"id": "n1", "type": "notice", "area": {"zones": ["Anzures"]}, "notice": {"text": "Feria"}}
    held = post(db, policy, notice, night)
    assert held.response["status"] == "held"
    fan_out(db, held.broadcast_id, now=night)
    alert = post(db, policy, {"id": "s", "type": "emergency.alert", "notice": {"text": "x"}}, night)
    fan_out(db, alert.broadcast_id, now=night)
    assert [m.priority for m in db.transaction(outbox.claim, "n", 50, night, 60)] == [0]  # only the emergency
    morning = datetime(2026, 12, 1, 13, 0)  # 07:00
    assert db.transaction(outbox.release_held, morning - timedelta(seconds=1)) == 0
    assert db.transaction(outbox.release_held, morning) == 30
    claimed = db.transaction(outbox.claim, "n", 50, morning, 60)
    assert len(claimed) == 30 and [m.id for m in claimed] == sorted(m.id for m in claimed)
    with db.engine.connect() as conn:
        history = conn.execute(
            select(message_status_history.c.status)
            .where(message_status_history.c.message_id == claimed[0].id)
            .order_by(message_status_history.c.id)
        ).scalars()
        assert list(history) == ["held", "queued"]


def test_a_broadcast_with_nobody_to_tell_is_done_at_once(db, policy):
    result = post(db, policy, water(zones=["Tacubaya"]))
    assert result.response["recipients"] == 0 and result.response["status"] == "done"
    assert db.transaction(broadcasts.unfinished) == []


def test_a_broadcast_whose_validity_ended_before_its_fan_out_queues_nothing(db, policy):
    add(db, policy, "+525599990002", "AGUA", ["Anzures"])
    bid = post(db, policy, water(zones=["Anzures"])).broadcast_id
    late = datetime(2026, 12, 5, 0, 0)
    result = db.transaction(broadcasts.fanout_chunk, bid, 100, late)
    assert (result.inserted, result.status) == (0, "expired")


def test_a_finished_broadcast_is_not_cancelled(db, policy):
    add_many(db, policy, 3, "AGUA", "Anzures")
    bid = post(db, policy, water(zones=["Anzures"])).broadcast_id
    fan_out(db, bid)
    assert len(db.transaction(outbox.claim, "node-a", 10, NOW, 60)) == 3  # every message in flight
    with db.engine.begin() as conn:
        conn.execute(update(messages).values(status="submitted", lease_owner=None, lease_until=None))
    with pytest.raises(broadcasts.NotCancellable, match="is finished"):
        db.transaction(broadcasts.cancel, bid, NOW)
    info = db.transaction(broadcasts.get, bid)
    assert info["status"] == "done" and info["messages"] == {"submitted": 3}
    with db.engine.begin() as conn:  # one message back in the queue (a retry): cancellable again
        conn.execute(
            update(messages)
            .where(messages.c.id == min(m["id"] for m in rows(db, bid)))
            .values(status="queued")
        )
    assert db.transaction(broadcasts.cancel, bid, NOW)["cancelled"] == 1
    with pytest.raises(broadcasts.NotCancellable, match="already cancelled"):
        db.transaction(broadcasts.cancel, bid, NOW)
