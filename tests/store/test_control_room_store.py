"""The control room's SQL on SQLite and PostgreSQL: a message cancelled only while it waits, carriers'
pauses, the search's filters and keyset pages, a broadcast's reach by colonia."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from gateway.domain.status import MessageStatus
from gateway.store import carrier_pauses, outbox, reads
from gateway.store.models import broadcasts, citizens, events, message_status_history, subscriptions, zones

from .test_outbox import NOW, _row, _status


def test_a_waiting_message_is_cancelled_once_and_a_leased_or_finished_one_never(db):
    leased, waiting, ended = db.transaction(outbox.enqueue, [_row(), _row(), _row()], NOW)
    assert [m.id for m in db.transaction(outbox.claim, "a", 1, NOW, 60)] == [leased]  # oldest first
    db.transaction(
        outbox.apply_failures,
        [outbox.Failed(ended, MessageStatus.REJECTED, None, "ESME_RX_R_APPN", NOW)],
    )
    result = db.transaction(outbox.cancel_message, waiting, NOW, "cancelled by an operator")
    assert result == {"id": waiting, "status": "cancelled", "previous_status": "queued"}
    assert _status(db, waiting) == "cancelled"
    for message_id, reason in ((waiting, "cancelled"), (leased, "being handed"), (ended, "rejected")):
        with pytest.raises(outbox.NotCancellable, match=reason):
            db.transaction(outbox.cancel_message, message_id, NOW, "again")
    assert _status(db, leased) == "queued"
    assert db.transaction(outbox.cancel_message, 999_999, NOW, "none") is None

    def history(conn):
        h = message_status_history.c
        return conn.execute(select(h.status, h.detail).where(h.message_id == waiting).order_by(h.id)).all()

    assert db.transaction(history) == [("queued", None), ("cancelled", "cancelled by an operator")]


def test_a_carrier_is_paused_once_and_resumed_once(db):
    assert db.transaction(carrier_pauses.pause, "telcel", "ana", NOW) is True
    assert db.transaction(carrier_pauses.pause, "telcel", "beto", NOW + timedelta(minutes=1)) is False
    assert db.transaction(carrier_pauses.listing) == [
        {"carrier": "telcel", "paused_at": NOW, "paused_by": "ana"}
    ]
    assert db.transaction(carrier_pauses.paused) == frozenset({"telcel"})
    assert db.transaction(carrier_pauses.resume, "telcel") is True
    assert db.transaction(carrier_pauses.resume, "telcel") is False
    assert db.transaction(carrier_pauses.paused) == frozenset()


def test_the_search_narrows_by_number_status_and_time_and_pages_by_keyset(db):
    ids = db.transaction(
        outbox.enqueue,
        [_row(), _row(msisdn="+525587654321"), _row(), _row()],
        NOW,
    )
    later = db.transaction(outbox.enqueue, [_row()], NOW + timedelta(hours=2))
    db.transaction(outbox.cancel_message, ids[2], NOW, "x")
    mine = reads.MessageSearch(msisdn="+525512345678", limit=2)
    page, cursor = db.transaction(reads.search_messages, mine)
    assert [r["id"] for r in page] == [later[0], ids[3]] and cursor == ids[3]
    mine.before_id = cursor
    page, cursor = db.transaction(reads.search_messages, mine)
    assert [r["id"] for r in page] == [ids[2], ids[0]] and cursor is None
    assert all(r["folio"] is None for r in page)  # no event: no case
    cancelled = reads.MessageSearch(statuses=["cancelled"])
    assert [r["id"] for r in db.transaction(reads.search_messages, cancelled)[0]] == [ids[2]]
    window = reads.MessageSearch(since=NOW + timedelta(hours=1), until=NOW + timedelta(hours=3))
    assert [r["id"] for r in db.transaction(reads.search_messages, window)[0]] == later


def _broadcast(conn, zone_ids: list[int] | None) -> int:
    event = conn.execute(
        insert(events).values(client_id="c", event_key="b1", type="water.outage", payload={}, received_at=NOW)
    ).inserted_primary_key[0]
    return conn.execute(
        insert(broadcasts).values(
            event_id=event, client_id="c", type="water.outage", topic="AGUA", zone_ids=zone_ids,
            scope="subscribers", priority=1, texts={}, message_status="queued", not_before=NOW,
            expires_at=NOW + timedelta(hours=1), status="done", recipients=3, queued=3,
            created_at=NOW, updated_at=NOW,
        )
    ).inserted_primary_key[0]  # fmt: skip


def test_a_broadcast_s_reach_counts_each_recipient_in_the_colonias_it_subscribed_in(db):
    def setup(conn):
        zone_ids = [
            conn.execute(
                insert(zones).values(key=f"k{n}", cp="11590", name=name, type="Colonia", updated_at=NOW)
            ).inserted_primary_key[0]
            for n, name in enumerate(("Anzures", "Tacubaya", "Escandón"))
        ]
        broadcast = _broadcast(conn, zone_ids[:2])
        people = []
        for n, subscribed in enumerate(([zone_ids[0]], [zone_ids[0], zone_ids[1]], [None], [zone_ids[2]])):
            msisdn = f"+52551111000{n}"
            citizen = conn.execute(
                insert(citizens).values(msisdn=msisdn, created_at=NOW, updated_at=NOW)
            ).inserted_primary_key[0]
            for zone in subscribed:
                conn.execute(
                    insert(subscriptions).values(
                        citizen_id=citizen, topic="AGUA", zone_id=zone, created_at=NOW
                    )
                )
            people.append((citizen, msisdn))
        rows = [_row(msisdn=m, citizen_id=c, broadcast_id=broadcast) for c, m in people[:3]]
        return broadcast, outbox.enqueue(conn, rows, NOW)

    broadcast, (_, second, _) = db.transaction(setup)
    db.transaction(
        outbox.apply_failures, [outbox.Failed(second, MessageStatus.UNDELIVERABLE, None, "UNDELIV", NOW)]
    )
    reach = sorted(
        db.transaction(reads.broadcast_reach, broadcast), key=lambda r: (r[0] is None, r[0] or "", r[1])
    )
    assert reach == [
        ("Anzures", "queued", 1),
        ("Anzures", "undeliverable", 1),
        ("Tacubaya", "undeliverable", 1),
        (None, "queued", 1),  # subscribed to every colonia
    ]
    assert db.transaction(reads.broadcast_exists, broadcast) and not db.transaction(
        reads.broadcast_exists, 999
    )
    (listed,) = db.transaction(reads.recent_broadcasts, 10)
    assert listed["messages"] == {"queued": 2, "undeliverable": 1} and listed["segments"] == 3
    assert isinstance(listed["created_at"], datetime)
