"""Citizens' long messages reassembled in the database, on SQLite and PostgreSQL: parts from any
process complete their group once, duplicates are ignored, a handled group is forgotten, old
parts are purged; on PostgreSQL the last two parts arriving at once in two processes complete it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from gateway.store import mo_parts
from gateway.store.db import Database
from smpp_client.concat import ConcatInfo
from tests.store.test_cluster import _until_blocked, pg  # noqa: F401 (pg: a fixture)

NOW = datetime(2026, 12, 2, 1, 0)
KEY = ("telcel", "5215512345678", "30311")
TIMEOUT = timedelta(minutes=10)


def _add(db: Database, seq: int, payload: bytes, now: datetime = NOW, total: int = 3):
    return db.transaction(mo_parts.add_part, KEY, ConcatInfo(7, total, seq), payload, now, TIMEOUT)


def test_parts_complete_their_group_whoever_stored_them(db):
    other = Database(db.url)  # a second process
    try:
        assert _add(db, 2, b"B") is None
        assert (
            other.transaction(mo_parts.add_part, KEY, ConcatInfo(7, 3, 2), b"B", NOW, TIMEOUT) is None
        )  # resent
        assert other.transaction(mo_parts.add_part, KEY, ConcatInfo(7, 3, 3), b"C", NOW, TIMEOUT) is None
        assert _add(db, 1, b"A") == [b"A", b"B", b"C"]
        assert _add(db, 3, b"C") == [b"A", b"B", b"C"]  # the last part again: whole again until forgotten
        assert db.transaction(mo_parts.forget, KEY, ConcatInfo(7, 3, 3)) == 3
        assert db.transaction(mo_parts.waiting) == 0
    finally:
        other.close()


def test_another_reference_or_sender_is_another_message_and_old_parts_go(db):
    assert _add(db, 1, b"A") is None
    assert db.transaction(mo_parts.add_part, KEY, ConcatInfo(8, 3, 2), b"x", NOW, TIMEOUT) is None
    other_sender = ("telcel", "5215599999999", "30311")
    assert db.transaction(mo_parts.add_part, other_sender, ConcatInfo(7, 3, 2), b"y", NOW, TIMEOUT) is None
    assert db.transaction(mo_parts.waiting) == 3
    later = NOW + TIMEOUT + timedelta(seconds=1)
    assert _add(db, 2, b"B", later) is None  # the first part is older than the timeout: purged
    assert db.transaction(mo_parts.waiting) == 1


def test_the_last_two_parts_at_once_in_two_processes_complete_the_message(pg):  # noqa: F811
    assert _add(pg, 1, b"A") is None
    with pg.engine.connect() as conn, ThreadPoolExecutor(1) as pool:
        tx = conn.begin()
        assert mo_parts.add_part(conn, KEY, ConcatInfo(7, 3, 2), b"B", NOW, TIMEOUT) is None
        last = pool.submit(_add, pg, 3, b"C")
        _until_blocked(pg)  # waits for the group's lock, not for a snapshot without part 2
        tx.commit()
        assert last.result(timeout=10) == [b"A", b"B", b"C"]


def test_forgetting_a_citizen_drops_the_parts_of_their_unfinished_message(db):
    from gateway.store import privacy

    assert _add(db, 1, b"A") is None  # KEY's sender: 5215512345678 as the SMSC wrote it
    db.transaction(privacy.forget, "+525512345678", NOW)
    assert db.transaction(mo_parts.waiting) == 0
