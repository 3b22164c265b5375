"""The requests an Open311 adapter follows (crm_tracked_requests): read, saved, listed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, or_, select, update

from crm_adapters.state import chunks
from gateway.store.models import cases, citizens, crm_adapter_state, crm_tracked_requests

from .changes import FINISHED, OPEN, Snapshot

t = crm_tracked_requests.c
_COLUMNS = (
    t.request_id,
    t.folio,
    t.phase,
    t.state,
    t.status_notes,
    t.agency,
    t.expected,
    t.updated,
    t.service_name,
    t.requested_at,
    t.announced,
    t.finished_at,
)


def _snapshot(row) -> Snapshot:
    return Snapshot(
        request_id=row.request_id,
        folio=row.folio,
        phase=row.phase,
        state=row.state,
        notes=row.status_notes,
        agency=row.agency,
        expected=row.expected,
        updated=row.updated,
        service_name=row.service_name,
        requested_at=row.requested_at,
        announced=bool(row.announced),
        finished_at=row.finished_at,
    )


def tracked(conn: Connection, adapter: str, request_ids: list[str]) -> dict[str, Snapshot]:
    found: dict[str, Snapshot] = {}
    for part in chunks(sorted(set(request_ids))):
        for row in conn.execute(select(*_COLUMNS).where(t.adapter == adapter, t.request_id.in_(part))):
            found[row.request_id] = _snapshot(row)
    return found


def followed(conn: Connection, adapter: str, finished_after: datetime) -> list[str]:
    """Ids to re-fetch: the open requests and those finished after ``finished_after``."""
    rows = conn.execute(
        select(t.request_id)
        .where(
            t.adapter == adapter,
            or_(t.phase == OPEN, and_(t.phase.in_(FINISHED), t.finished_at >= finished_after)),
        )
        .order_by(t.request_id)
    )
    return list(rows.scalars())


ANALYZE_AFTER = 500  # new copies in one transaction that refresh PostgreSQL's statistics
_KEY = ("adapter", "request_id", "folio")
_COPY = (
    "phase",
    "state",
    "status_notes",
    "agency",
    "expected",
    "updated",
    "service_name",
    "requested_at",
    "announced",
    "finished_at",
    "seen_at",
)


def _binds(*columns: str) -> dict:
    return {column: bindparam(f"b_{column}") for column in columns}


def save(
    conn: Connection,
    adapter: str,
    changed: list[tuple[Snapshot, bool]],
    now: datetime,
) -> None:
    """Write the new copies (``(snapshot, is_new)``); ``seen_at``: when a copy last changed (an
    unchanged request is not written: its freshness is its adapter's last successful cycle)."""
    rows = [
        {
            "b_adapter": adapter,
            "b_request_id": s.request_id,
            "b_folio": s.folio,
            "b_phase": s.phase,
            "b_state": s.state,
            "b_status_notes": s.notes,
            "b_agency": s.agency,
            "b_expected": s.expected,
            "b_updated": s.updated,
            "b_service_name": s.service_name,
            "b_requested_at": s.requested_at,
            "b_announced": s.announced,
            "b_finished_at": s.finished_at,
            "b_seen_at": now,
            "b_created_at": now,
        }
        for s, _ in changed
    ]
    new = [row for row, (_, is_new) in zip(rows, changed, strict=True) if is_new]
    old = [row for row, (_, is_new) in zip(rows, changed, strict=True) if not is_new]
    if new:
        conn.execute(crm_tracked_requests.insert().values(**_binds(*_KEY, *_COPY, "created_at")), new)
        if len(new) >= ANALYZE_AFTER and conn.dialect.name == "postgresql":
            # a first backfill: without statistics the planner reads every row of the adapter for
            # each look-up by id (a tenth of a second per thousand ids) until autovacuum analyzes
            conn.exec_driver_sql("ANALYZE crm_tracked_requests")
    if old:
        conn.execute(
            update(crm_tracked_requests)
            .where(t.adapter == bindparam("b_adapter"), t.request_id == bindparam("b_request_id"))
            .values(**_binds(*_COPY)),
            old,
        )


def citizens_of(conn: Connection, folios: list[str]) -> dict[str, str]:
    """folio -> the number of the citizen whose case it is (the copy the gateway keeps)."""
    found: dict[str, str] = {}
    for part in chunks(sorted(set(folios))):
        found.update(
            conn.execute(
                select(cases.c.folio, citizens.c.msisdn)
                .join(citizens, citizens.c.id == cases.c.citizen_id)
                .where(cases.c.folio.in_(part))
            ).all()
        )
    return found


@dataclass(frozen=True, slots=True)
class Copy:
    """How old the gateway's copy of a request is: written at ``seen_at``, and as fresh as its
    adapter's last successful cycle if that cycle looks at it."""

    adapter: str
    request_id: str
    seen_at: datetime
    phase: str
    finished_at: datetime | None
    adapter_success_at: datetime | None


def by_folio(conn: Connection, folio: str) -> list[Copy]:
    s = crm_adapter_state.c
    rows = conn.execute(
        select(t.adapter, t.request_id, t.seen_at, t.phase, t.finished_at, s.last_success_at)
        .join(crm_adapter_state, s.adapter == t.adapter, isouter=True)
        .where(t.folio == folio)
    )
    return [Copy(*row) for row in rows]


def forget_folios(conn: Connection, folios: list[str]) -> int:
    """Stop following the requests behind these folios (a citizen's data erased)."""
    removed = 0
    for part in chunks(sorted(set(folios))):
        removed += conn.execute(crm_tracked_requests.delete().where(t.folio.in_(part))).rowcount
    return removed
