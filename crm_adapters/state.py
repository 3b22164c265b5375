"""An adapter's own rows: its position and lease (crm_adapter_state), the phone directory.

The position (``cursor``, a small JSON object the adapter defines) is written after each unit of
work whose events were accepted, so a restart resumes there; what was seen again after a crash
gives the same event ids, which the intake answers as duplicates. The lease lets several gateway
processes share one database: only the lease holder polls an adapter, and a crashed holder's lease
runs out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select, update

from gateway.store.db import insert_ignoring_conflicts
from gateway.store.models import crm_adapter_state, crm_phone_numbers

IN_CHUNK = 500


def chunks(values: list, size: int = IN_CHUNK) -> Iterable[list]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


@dataclass(frozen=True, slots=True)
class AdapterState:
    cursor: dict
    failures: int
    last_attempt_at: datetime
    clock_offset_seconds: float | None


def claim(
    conn: Connection,
    adapter: str,
    kind: str,
    client_id: str,
    owner: str,
    lease_seconds: float,
    now: datetime,
    initial_cursor: dict,
) -> AdapterState | None:
    """Take (or renew) the adapter's lease; None while another process holds it."""
    s = crm_adapter_state.c
    conn.execute(
        insert_ignoring_conflicts(conn, crm_adapter_state, ["adapter"]).values(
            adapter=adapter, kind=kind, client_id=client_id, cursor=initial_cursor, updated_at=now
        )
    )
    until = now + timedelta(seconds=lease_seconds)
    taken = conn.execute(
        update(crm_adapter_state)
        .where(
            s.adapter == adapter,
            or_(s.lease_owner.is_(None), s.lease_owner == owner, s.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=until)
    ).rowcount
    if not taken:
        return None
    row = conn.execute(
        select(s.cursor, s.failures, s.updated_at, s.clock_offset_seconds).where(s.adapter == adapter)
    ).one()
    return AdapterState(dict(row.cursor or {}), row.failures, row.updated_at, row.clock_offset_seconds)


def save_cursor(
    conn: Connection, adapter: str, owner: str, cursor: dict, offset: float | None, lease_until: datetime
) -> None:
    """The new position (and the lease renewed); only by the lease holder."""
    s = crm_adapter_state.c
    conn.execute(
        update(crm_adapter_state)
        .where(s.adapter == adapter, s.lease_owner == owner)
        .values(cursor=cursor, clock_offset_seconds=offset, lease_until=lease_until)
    )


def finish(
    conn: Connection, adapter: str, owner: str, error: str | None, offset: float | None, now: datetime
) -> int:
    """Release the lease and record how the cycle went; returns the failures in a row."""
    s = crm_adapter_state.c
    values: dict = {
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
        "clock_offset_seconds": offset,
    }
    if error is None:
        values.update(failures=0, last_error=None, last_success_at=now)
    else:
        values.update(failures=s.failures + 1, last_error=error[:255])
    conn.execute(
        update(crm_adapter_state).where(s.adapter == adapter, s.lease_owner == owner).values(**values)
    )
    return conn.execute(select(s.failures).where(s.adapter == adapter)).scalar_one()


def release(conn: Connection, adapter: str, owner: str) -> None:
    """Give the lease back without recording a cycle (the process is stopping)."""
    s = crm_adapter_state.c
    conn.execute(
        update(crm_adapter_state)
        .where(s.adapter == adapter, s.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def status(conn: Connection) -> list[dict]:
    """Every adapter's row (operators, tests)."""
    return [dict(r) for r in conn.execute(select(crm_adapter_state)).mappings()]


# --- the phone directory -----------------------------------------------------------------------------


def phone_numbers(conn: Connection, client_id: str, keys: list[str]) -> dict[str, str]:
    p = crm_phone_numbers.c
    found: dict[str, str] = {}
    for part in chunks(sorted(set(keys))):
        found.update(
            conn.execute(select(p.key, p.msisdn).where(p.client_id == client_id, p.key.in_(part))).all()
        )
    return found


def save_phone_numbers(
    conn: Connection, client_id: str, rows: list[tuple[str, str]], now: datetime
) -> tuple[int, int]:
    """Store (key, msisdn) pairs, the last of a key winning; returns (added, changed)."""
    wanted = dict(rows)
    have = phone_numbers(conn, client_id, list(wanted))
    new = [
        {"client_id": client_id, "key": k, "msisdn": m, "updated_at": now}
        for k, m in wanted.items()
        if k not in have
    ]
    changed = [(k, m) for k, m in wanted.items() if k in have and have[k] != m]
    if new:
        conn.execute(insert_ignoring_conflicts(conn, crm_phone_numbers, ["client_id", "key"]), new)
    p = crm_phone_numbers.c
    for key, msisdn in changed:
        conn.execute(
            update(crm_phone_numbers)
            .where(p.client_id == client_id, p.key == key)
            .values(msisdn=msisdn, updated_at=now)
        )
    return len(new), len(changed)
