"""Dispatch processes sharing one database: heartbeats, takeover of the dead, bind slots.

Each dispatch process has a row in ``processes`` under its lease token (the ``lease_owner`` of the
messages it claims) and renews ``heartbeat_at`` every round. A row whose heartbeat is older than the
staleness limit is a dead process: the first live process to see it deletes it (one transaction,
so one process does) and, in the same transaction, gives its leased messages back to the queue with
the attempt their claim counted returned, and frees its bind slots.

A carrier's binds are slots ``0 .. binds-1`` in ``bind_slots``; a process opens a bind only for a
slot it holds, and a slot is taken only while free (a conditional UPDATE), so the binds open at an
SMSC never exceed the carrier's ``binds`` whatever the number of processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, delete, select, update

from . import driver
from .db import insert_ignoring_conflicts
from .models import bind_slots, processes


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    role: str
    host: str
    pid: int


def beat(conn: Connection, member: Member, now: datetime) -> bool:
    """Renew ``member``'s heartbeat; False when its row was gone (it was taken for dead: what it
    held was taken over), in which case it is registered again."""
    renewed = conn.execute(
        update(processes).where(processes.c.id == member.id).values(heartbeat_at=now)
    ).rowcount
    if renewed:
        return True
    conn.execute(
        insert_ignoring_conflicts(conn, processes, ["id"]).values(
            id=member.id, role=member.role, host=member.host, pid=member.pid, started_at=now, heartbeat_at=now
        )
    )
    return False


@dataclass(frozen=True, slots=True)
class TakenOver:
    processes: list[str]
    messages: int


def take_over_dead(conn: Connection, stale_before: datetime, keep: str | None = None) -> TakenOver:
    """Processes whose heartbeat is older than ``stale_before`` (but ``keep``) are removed; their
    leased queued messages are claimable at once (the attempt their claim counted given back) and
    their bind slots free. A dead process is taken over once, by whichever live process deletes
    its row."""
    stale = processes.c.heartbeat_at < stale_before
    if keep is not None:
        stale = and_(stale, processes.c.id != keep)
    dead = list(conn.execute(delete(processes).where(stale).returning(processes.c.id)).scalars())
    if not dead:
        return TakenOver([], 0)
    return TakenOver(sorted(dead), _give_back(conn, dead))


def leave(conn: Connection, member_id: str) -> int:
    """A process stopping: its row and slots go, and what it still has leased is queued again at once."""
    conn.execute(delete(processes).where(processes.c.id == member_id))
    return _give_back(conn, [member_id])


def _give_back(conn: Connection, owners: Sequence[str]) -> int:
    where, params = driver.in_list(conn, "lease_owner", list(owners))
    taken = driver.run(
        conn,
        "UPDATE messages SET lease_owner = NULL, lease_until = NULL,"
        " attempts = CASE WHEN attempts > attempts_at_retry THEN attempts - 1 ELSE attempts END"
        f" WHERE status = 'queued' AND {where} RETURNING id",
        params,
    )
    conn.execute(
        update(bind_slots).where(bind_slots.c.owner.in_(list(owners))).values(owner=None, since=None)
    )
    return len(taken)


def members(conn: Connection, stale_before: datetime) -> list[str]:
    """The live processes' ids, in a fixed order (how binds are shared is computed from it)."""
    query = select(processes.c.id).where(processes.c.heartbeat_at >= stale_before).order_by(processes.c.id)
    return list(conn.execute(query).scalars())


def ensure_slots(conn: Connection, carrier: str, binds: int) -> None:
    """The carrier's slots 0..binds-1 exist (other processes may be creating them too)."""
    existing = set(conn.execute(select(bind_slots.c.slot).where(bind_slots.c.carrier == carrier)).scalars())
    missing = [{"carrier": carrier, "slot": slot} for slot in range(binds) if slot not in existing]
    if missing:
        conn.execute(insert_ignoring_conflicts(conn, bind_slots, ["carrier", "slot"]), missing)


def held(conn: Connection, member_id: str) -> dict[str, set[int]]:
    """{carrier: slots} held by ``member_id``."""
    out: dict[str, set[int]] = {}
    query = select(bind_slots.c.carrier, bind_slots.c.slot).where(bind_slots.c.owner == member_id)
    for carrier, slot in conn.execute(query):
        out.setdefault(carrier, set()).add(slot)
    return out


def free_orphans(conn: Connection) -> None:
    """Slots held by no registered process (a row removed by hand, a process that never came back)."""
    conn.execute(
        update(bind_slots)
        .where(bind_slots.c.owner.is_not(None), bind_slots.c.owner.not_in(select(processes.c.id)))
        .values(owner=None, since=None)
    )


def claim_slots(
    conn: Connection, member_id: str, carrier: str, binds: int, count: int, now: datetime
) -> list[int]:
    """Take up to ``count`` free slots of ``carrier`` (below ``binds``), lowest first; each only if
    still free when it is taken, so two processes never hold one slot."""
    if count <= 0:
        return []
    c = bind_slots.c
    free = list(
        conn.execute(
            select(c.slot).where(c.carrier == carrier, c.owner.is_(None), c.slot < binds).order_by(c.slot)
        ).scalars()
    )
    taken = []
    for slot in free:
        won = conn.execute(
            update(bind_slots)
            .where(c.carrier == carrier, c.slot == slot, c.owner.is_(None))
            .values(owner=member_id, since=now)
        ).rowcount
        if won:
            taken.append(slot)
            if len(taken) == count:
                break
    return taken


def release_slots(conn: Connection, member_id: str, carrier: str, slots: Sequence[int]) -> None:
    if slots:
        c = bind_slots.c
        conn.execute(
            update(bind_slots)
            .where(c.carrier == carrier, c.slot.in_(list(slots)), c.owner == member_id)
            .values(owner=None, since=None)
        )


def slots_of(conn: Connection) -> list[tuple[str, int, str | None]]:
    """Every slot: (carrier, slot, owner), for tests and the operators."""
    c = bind_slots.c
    return [
        tuple(row) for row in conn.execute(select(c.carrier, c.slot, c.owner).order_by(c.carrier, c.slot))
    ]
