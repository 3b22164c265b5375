"""Statements of the hot paths, run through the database driver itself.

The status writer and the claim run a few statements per batch over thousands of rows; built by
SQLAlchemy Core, each row's parameters pass through its statement cache, its compiled parameter
maps and its type processors, which cost more than the database's own work (profiled: about half
of the database thread on SQLite). Here the SQL is written once, with ``?`` placeholders (turned
into the driver's ``%s`` for psycopg), and rows go to the driver's ``executemany`` as tuples. Times
are converted once per value to what the table's DateTime column stores on that dialect, so rows
written here and rows written through SQLAlchemy compare and sort alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from .models import messages

Row = Sequence[Any]


@cache
def _placeholders(dialect: str, sql: str) -> str:
    return sql.replace("?", "%s") if dialect == "postgresql" else sql


def run_many(conn: Connection, sql: str, rows: Sequence[Row]) -> int:
    """``sql`` once per row (``executemany``); returns the rows it changed where the driver says."""
    if not rows:
        return 0
    sql = _placeholders(conn.dialect.name, sql)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(sql, rows)
        return cursor.rowcount
    except conn.dialect.dbapi.Error as exc:
        raise _wrapped(conn, sql, exc) from exc
    finally:
        cursor.close()


@dataclass(frozen=True, slots=True)
class Batch:
    """One statement over many rows, written for each dialect. On SQLite the rows go to
    ``executemany`` (``sqlite``: ``?`` per value of a row). On PostgreSQL each column travels as one
    array and the statement reads them with ``unnest`` (``postgresql``: ``?`` per column, cast to
    its array type): one statement the server plans and runs once per batch, and one parameter per
    column for the driver to send, instead of a Bind/Execute with its parameters per row."""

    sqlite: str
    postgresql: str


def run_batch(conn: Connection, batch: Batch, rows: Sequence[Row], *common: Any) -> int:
    """``batch`` over ``rows``; the rows it changed (inserted or updated). ``common``: values the
    same for every row, bound after a row's values (SQLite) or after the arrays (PostgreSQL)."""
    if not rows:
        return 0
    if conn.dialect.name != "postgresql":
        return run_many(conn, batch.sqlite, [(*row, *common) for row in rows] if common else rows)
    sql = _placeholders("postgresql", batch.postgresql)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, [*(list(column) for column in zip(*rows, strict=True)), *common])
        return cursor.rowcount
    except conn.dialect.dbapi.Error as exc:
        raise _wrapped(conn, sql, exc) from exc
    finally:
        cursor.close()


def run(conn: Connection, sql: str, params: Row = ()) -> list[tuple]:
    """One statement; its rows (RETURNING, SELECT), or [] when it returns none."""
    sql = _placeholders(conn.dialect.name, sql)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []
    except conn.dialect.dbapi.Error as exc:
        raise _wrapped(conn, sql, exc) from exc
    finally:
        cursor.close()


def _wrapped(conn: Connection, sql: str, exc: Exception) -> Exception:
    """The driver's error as SQLAlchemy raises it (IntegrityError, OperationalError…), so callers
    tell a row's fault from the database's the same way whatever ran the statement."""
    return DBAPIError.instance(
        sql, None, exc, conn.dialect.dbapi.Error, hide_parameters=True, dialect=conn.dialect
    )


def in_list(conn: Connection, column: str, values: Sequence[Any]) -> tuple[str, tuple]:
    """``column IN (…)`` for ``values`` as SQL and its parameters (``= ANY(?)`` on PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        return f"{column} = ANY(?)", (list(values),)
    return f"{column} IN ({','.join('?' * len(values))})", tuple(values)


def chunks(values: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def datetime_to_db(conn: Connection) -> Callable[[datetime | None], Any]:
    """How a naive UTC datetime is bound for this connection's dialect (the column type's own
    conversion: on SQLite the string SQLAlchemy stores, on PostgreSQL the datetime itself)."""
    dialect = conn.dialect
    if dialect.name == "sqlite":
        return _sqlite_datetime
    process = messages.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return lambda value: value
    return lambda value: None if value is None else process(value)


def _sqlite_datetime(value: datetime | None) -> str | None:
    # what SQLAlchemy's SQLite DATETIME stores ("2026-12-01 10:00:00.000000"), written in C
    return None if value is None else value.isoformat(" ", "microseconds")


def datetime_from_db(conn: Connection) -> Callable[[Any], datetime | None]:
    """The reverse, for values read through the driver."""
    dialect = conn.dialect
    process = messages.c.created_at.type.dialect_impl(dialect).result_processor(dialect, None)
    if process is None:
        return lambda value: value
    return process
