"""Citizens (by E.164 number) and the cases they own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

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
