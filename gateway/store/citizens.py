"""Citizens (by E.164 number) and the cases they own."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from .bulk import BulkWriter
from .db import insert_ignoring_conflicts
from .models import cases, citizens


def upsert_citizen(
    conn: Connection, msisdn: str, language: str | None, name: str | None, now: datetime
) -> tuple[int, bool, str]:
    """Returns (citizen id, opted_out, language); a language or name not given keeps the stored one."""
    conn.execute(
        insert_ignoring_conflicts(conn, citizens, ["msisdn"]).values(
            msisdn=msisdn, language=language or "es", name=name, created_at=now, updated_at=now
        )
    )
    row = conn.execute(
        select(citizens.c.id, citizens.c.opted_out, citizens.c.language, citizens.c.name).where(
            citizens.c.msisdn == msisdn
        )
    ).one()
    if (language and row.language != language) or (name and row.name != name):
        conn.execute(
            update(citizens)
            .where(citizens.c.id == row.id)
            .values(language=language or row.language, name=name or row.name, updated_at=now)
        )
    return row.id, bool(row.opted_out), language or row.language


def set_language(conn: Connection, citizen_id: int, language: str, now: datetime) -> None:
    conn.execute(
        update(citizens).where(citizens.c.id == citizen_id).values(language=language, updated_at=now)
    )


def by_number(writer: BulkWriter, numbers: Sequence[str]) -> Iterator[tuple[int, str, bool, str]]:
    """(id, msisdn, opted_out, language) of the citizens with these numbers."""
    columns = ("id", "msisdn", "opted_out", "language")
    for cid, msisdn, opted_out, language in writer.select_in(citizens, columns, "msisdn", numbers):
        yield cid, msisdn, bool(opted_out), language


def add_many(writer: BulkWriter, rows: list[tuple[str, str]]) -> None:
    """New citizens (msisdn, language); numbers already there are left as they are."""
    now = writer.now
    writer.insert(
        citizens,
        ("msisdn", "language", "opted_out", "created_at", "updated_at"),
        [(msisdn, language, False, now, now) for msisdn, language in rows],
    )


def set_languages(conn: Connection, changes: list[tuple[int, str]], now: datetime) -> None:
    """(citizen id, language) pairs, in one executemany."""
    if changes:
        conn.execute(
            update(citizens)
            .where(citizens.c.id == bindparam("cid"))
            .values(language=bindparam("lang"), updated_at=now),
            [{"cid": cid, "lang": language} for cid, language in changes],
        )


def upsert_case(
    conn: Connection, folio: str, citizen_id: int, category: str | None, status: str | None, now: datetime
) -> int:
    conn.execute(
        insert_ignoring_conflicts(conn, cases, ["folio"]).values(
            folio=folio,
            citizen_id=citizen_id,
            category=category,
            status=status,
            created_at=now,
            updated_at=now,
        )
    )
    row = conn.execute(select(cases.c.id).where(cases.c.folio == folio)).one()
    values = {"citizen_id": citizen_id, "updated_at": now}
    if category:
        values["category"] = category
    if status:
        values["status"] = status
    conn.execute(update(cases).where(cases.c.id == row.id).values(**values))
    return row.id


def cases_of(conn: Connection, citizen_id: int) -> list:
    """The citizen's cases (id, folio, category, status, progress, resolved_on, closed_at)."""
    k = cases.c
    return conn.execute(
        select(k.id, k.folio, k.category, k.status, k.progress, k.resolved_on, k.closed_at).where(
            k.citizen_id == citizen_id
        )
    ).all()
