"""Carriers an operator paused: a row per paused carrier, read by every process's dispatcher."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from . import driver
from .models import carrier_pauses


def paused(conn: Connection) -> frozenset[str]:
    """The names of the paused carriers (read by the dispatcher each round, through the driver:
    SQLAlchemy's statement work was most of this query's cost at hundreds of rounds a second)."""
    return frozenset(carrier for (carrier,) in driver.run(conn, "SELECT carrier FROM carrier_pauses"))


def listing(conn: Connection) -> list[dict]:
    """Every pause: carrier, paused_at, paused_by; by carrier."""
    c = carrier_pauses.c
    rows = conn.execute(select(carrier_pauses).order_by(c.carrier)).mappings()
    return [dict(r) for r in rows]


def pause(conn: Connection, carrier: str, by: str, now: datetime) -> bool:
    """Pause ``carrier``; False when it was paused already (the first pause is kept, also when two
    operators pause it at once)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(carrier_pauses)
        .values(carrier=carrier, paused_at=now, paused_by=by)
        .on_conflict_do_nothing(index_elements=["carrier"])
        .returning(carrier_pauses.c.carrier)
    )
    return conn.execute(statement).first() is not None


def resume(conn: Connection, carrier: str) -> bool:
    """Resume ``carrier``; False when it was not paused."""
    gone = (
        delete(carrier_pauses).where(carrier_pauses.c.carrier == carrier).returning(carrier_pauses.c.carrier)
    )
    return conn.execute(gone).first() is not None
