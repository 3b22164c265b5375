"""Several dispatch processes on one database: jobs that change rows claim them (two runs at once
change each row once), write-backs only where the lease is still the writer's, heartbeats and the
takeover of a dead process, bind slots held by one process at a time. SQLite and PostgreSQL; the
races of two transactions at once on PostgreSQL (SQLite has one writer)."""

from __future__ import annotations

import time as wall
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from gateway.domain.status import MessageStatus
from gateway.store import appointments, outbox, processes
from gateway.store.db import Database
from gateway.store.models import message_status_history, messages
from scheduler.cluster import share
from tests.store.test_reminders import policy, post, scheduled  # noqa: F401 (policy: a fixture)

NOW = datetime(2026, 11, 29, 16, 0, 0)


def _row(n: int, **extra) -> dict:
    return {
        "msisdn": f"+5255{n:08d}",
        "language": "es",
        "body": "hola",
        "encoding": "gsm7",
        "segments": 1,
        "priority": 2,
        "expires_at": NOW + timedelta(hours=1),
        **extra,
    }


def _history(db) -> Counter:
    """(message id, status) -> rows in the history."""
    with db.engine.connect() as conn:
        h = message_status_history.c
        return Counter((mid, st) for mid, st in conn.execute(select(h.message_id, h.status)))


def _message(db, mid: int):
    with db.engine.connect() as conn:
        return conn.execute(select(messages).where(messages.c.id == mid)).mappings().one()


@pytest.fixture
def pg(postgres_url):
    from tests.conftest import _truncate_postgres

    _truncate_postgres(postgres_url)
    database = Database(postgres_url)
    yield database
    database.close()


def _until_blocked(db: Database, timeout: float = 10.0) -> None:
    """Until another backend waits on a row lock (the second transaction reached the rows)."""
    deadline = wall.monotonic() + timeout
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    while wall.monotonic() < deadline:
        with db.engine.connect() as conn:
            if conn.execute(query).scalar():
                return
        wall.sleep(0.01)
    raise AssertionError("the second transaction never waited for the first")


def _race(db: Database, job, *args):
    """``job`` in one transaction left open while a second runs it; returns (first, second)."""
    with db.engine.connect() as conn, ThreadPoolExecutor(1) as pool:
        tx = conn.begin()
        first = job(conn, *args)
        second = pool.submit(db.transaction, job, *args)
        _until_blocked(db)
        tx.commit()
        return first, second.result(timeout=10)


def test_two_expiries_at_once_expire_each_message_once_with_one_callback(pg):
    ids = pg.transaction(
        outbox.enqueue, [_row(n, expires_at=NOW - timedelta(seconds=1)) for n in range(30)], NOW
    )
    called: list[int] = []

    def expire(conn, now):
        return outbox.expire_overdue(conn, now, lambda _c, mids, _s, _n: called.extend(mids))

    first, second = _race(pg, expire, NOW)
    assert (first, second) == (30, 0)
    assert sorted(called) == ids  # one callback each
    history = _history(pg)
    assert all(history[(mid, "expired")] == 1 for mid in ids)


def test_two_quiet_hours_releases_at_once_release_each_message_once(pg):
    ids = pg.transaction(outbox.enqueue, [_row(n, status="held", not_before=NOW) for n in range(30)], NOW)
    first, second = _race(pg, outbox.release_held, NOW)
    assert (first, second) == (30, 0)
    history = _history(pg)
    assert all(history[(mid, "queued")] == 1 and history[(mid, "held")] == 1 for mid in ids)


def test_two_processes_on_one_due_reminder_send_it_once(pg, policy):  # noqa: F811
    post(pg, policy, scheduled("2030-12-03T10:30:00-06:00"), datetime(2030, 11, 29, 16, 0))
    due_at = datetime(2030, 12, 2, 16, 30)
    with pg.engine.connect() as conn, ThreadPoolExecutor(1) as pool:
        tx = conn.begin()
        assert [label for label, _ in appointments.claim_due(conn, due_at)] == ["24h"]
        # the other process skips the row being claimed rather than waiting for it
        assert pool.submit(pg.transaction, appointments.claim_due, due_at).result(timeout=10) == []
        tx.commit()
    assert pg.transaction(appointments.claim_due, due_at) == []


def test_a_write_back_changes_only_a_message_whose_lease_is_still_the_writers(db):
    sent, retried, failed = db.transaction(outbox.enqueue, [_row(1), _row(2), _row(3)], NOW)
    db.transaction(outbox.claim, "slow", 10, NOW, 60)
    later = NOW + timedelta(seconds=61)  # "slow"'s lease ran out: "live" took them
    assert len(db.transaction(outbox.claim, "live", 10, later, 60)) == 3
    late = [outbox.Submitted(sent, "telcel", ["x1"], later)]
    db.transaction(outbox.apply_submitted, late, "slow")
    assert not late[0].applied
    db.transaction(
        outbox.apply_retries, [outbox.Retry(retried, later + timedelta(hours=1), 8, "e", later)], "slow"
    )
    fails = [outbox.Failed(failed, MessageStatus.FAILED, 11, "ESME_RINVDSTADR", later)]
    db.transaction(outbox.apply_failures, fails, "slow")
    assert not fails[0].applied
    for mid in (sent, retried, failed):
        row = _message(db, mid)
        assert (row["status"], row["lease_owner"], row["not_before"]) == ("queued", "live", NOW)
    mine = [outbox.Submitted(sent, "telcel", ["x2"], later)]
    db.transaction(outbox.apply_submitted, mine, "live")
    assert mine[0].applied and _message(db, sent)["smsc_message_id"] == "x2"


def test_a_dead_process_is_taken_over_once_its_leases_queued_without_counting_an_attempt(db):
    dead, live = (
        processes.Member("dead/1", "dispatch", "h", 1),
        processes.Member("live/2", "dispatch", "h", 2),
    )
    assert not db.transaction(processes.beat, dead, NOW)  # registered
    assert not db.transaction(processes.beat, live, NOW)
    assert db.transaction(processes.beat, live, NOW + timedelta(seconds=10))  # renewed
    ids = db.transaction(outbox.enqueue, [_row(n) for n in range(5)], NOW)
    assert len(db.transaction(outbox.claim, "dead/1", 10, NOW, 120)) == 5
    db.transaction(processes.ensure_slots, "telcel", 2)
    assert db.transaction(processes.claim_slots, "dead/1", "telcel", 2, 2, NOW) == [0, 1]
    stale_before = NOW + timedelta(seconds=5)
    taken = db.transaction(processes.take_over_dead, stale_before)
    assert (taken.processes, taken.messages) == (["dead/1"], 5)
    assert db.transaction(processes.take_over_dead, stale_before).processes == []  # once
    assert db.transaction(processes.members, stale_before) == ["live/2"]
    for mid in ids:
        row = _message(db, mid)
        assert (row["lease_owner"], row["attempts"]) == (None, 0)
    # claimable at once, long before the lease would have ended
    assert len(db.transaction(outbox.claim, "live/2", 10, NOW + timedelta(seconds=6), 120)) == 5
    assert db.transaction(processes.claim_slots, "live/2", "telcel", 2, 2, NOW) == [0, 1]
    # the process taken for dead beats again: registered anew, holding nothing
    assert not db.transaction(processes.beat, dead, NOW + timedelta(seconds=11))
    assert db.transaction(processes.held, "dead/1") == {}
    # alone on the database (SQLite): at start every other registered process is a dead predecessor
    everyone_else = db.transaction(processes.take_over_dead, NOW + timedelta(days=1), "live/2")
    assert everyone_else.processes == ["dead/1"]
    assert db.transaction(processes.members, NOW) == ["live/2"]


def test_a_bind_slot_is_held_by_one_process_at_a_time(db):
    db.transaction(processes.ensure_slots, "telcel", 3)
    db.transaction(processes.ensure_slots, "telcel", 3)  # another process: idempotent
    assert db.transaction(processes.claim_slots, "a", "telcel", 3, 2, NOW) == [0, 1]
    assert db.transaction(processes.claim_slots, "b", "telcel", 3, 2, NOW) == [2]
    assert db.transaction(processes.claim_slots, "c", "telcel", 3, 1, NOW) == []
    db.transaction(processes.release_slots, "b", "telcel", [0, 2])  # only its own is released
    assert db.transaction(processes.claim_slots, "c", "telcel", 3, 2, NOW) == [2]
    assert db.transaction(processes.held, "a") == {"telcel": {0, 1}}


def test_leaving_gives_back_what_is_leased(db):
    me = processes.Member("me/1", "dispatch", "h", 1)
    db.transaction(processes.beat, me, NOW)
    db.transaction(outbox.enqueue, [_row(1)], NOW)
    db.transaction(outbox.claim, "me/1", 10, NOW, 120)
    assert db.transaction(processes.leave, "me/1") == 1
    with db.engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(messages).where(messages.c.lease_owner.is_not(None))
            ).scalar()
            == 0
        )


@pytest.mark.parametrize("binds", range(1, 9))
def test_shares_of_the_binds_add_up_to_the_carriers(binds):
    for members in range(1, 6):
        for offset in range(members):
            shares = [share(binds, members, (rank - offset) % members) for rank in range(members)]
            assert sum(shares) == binds and max(shares) - min(shares) <= 1
