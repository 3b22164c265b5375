"""Many rows in few statements, for the bulk import (bench/import_subscribers.py: >= 20,000 rows/s).

On SQLite the rows go straight to the driver as plain tuples, with the values SQLAlchemy would
convert (datetimes, JSON) converted once by its own bind processors: its per-row parameter
processing cost more than the inserts. Elsewhere they go through SQLAlchemy Core.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import Connection, Table, insert, select

from .db import insert_ignoring_conflicts
from .models import citizens, consent_events

IN_CHUNK = 900  # values per IN (...) list


def in_lists(values: Sequence, size: int = IN_CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class BulkWriter:
    """executemany of plain tuples within one transaction; ``now`` and JSON values as stored."""

    def __init__(self, conn: Connection, now: datetime):
        self.conn = conn
        self.raw = conn.dialect.name == "sqlite"
        if self.raw:
            dialect = conn.dialect
            to_db = citizens.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
            self.now = to_db(now) if to_db else now
            self._json = consent_events.c.topics.type.dialect_impl(dialect).bind_processor(dialect)
        else:
            self.now = now
            self._json = None
        self._encoded: dict[tuple, object] = {}

    def json(self, values: tuple) -> object:
        """A JSON list as the driver takes it (a few distinct lists per file: each encoded once)."""
        found = self._encoded.get(values)
        if found is None:
            found = self._encoded[values] = self._json(list(values)) if self._json else list(values)
        return found

    def insert(
        self, table: Table, columns: tuple[str, ...], rows: list[tuple], ignore_conflicts: bool = True
    ) -> None:
        if not rows:
            return
        if self.raw:
            sql = (
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
            )
            self.conn.exec_driver_sql(sql, rows)
        else:
            stmt = insert_ignoring_conflicts(self.conn, table, None) if ignore_conflicts else insert(table)
            self.conn.execute(stmt, [dict(zip(columns, row, strict=True)) for row in rows])

    def select_in(
        self, table: Table, columns: tuple[str, ...], key: str, values: Sequence
    ) -> Iterator[tuple]:
        """``columns`` of the rows whose ``key`` is one of ``values``, a few hundred per query."""
        for part in in_lists(values):
            if self.raw:  # SQLAlchemy's expanding IN costs more than the query
                yield from self.conn.exec_driver_sql(
                    f"SELECT {', '.join(columns)} FROM {table.name} "
                    f"WHERE {key} IN ({', '.join('?' * len(part))})",
                    tuple(part),
                ).all()
            else:
                query = select(*(table.c[name] for name in columns)).where(table.c[key].in_(list(part)))
                yield from self.conn.execute(query).all()
