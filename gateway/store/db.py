"""Engine creation and the executor that runs blocking database work off the event loop.

SQLite gets one writer thread (its single-writer model, without "database is locked" churn);
PostgreSQL gets one pool of ``[database] pool_size`` connections and as many threads, so reads and
writes from several requests overlap and a thread never waits for a connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url

T = TypeVar("T")


def normalize_url(url: str) -> str:
    """postgresql:// URLs use psycopg 3; sqlite paths get their folder created."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


DEFAULT_POOL_SIZE = 8


def make_engine(url: str, pool_size: int = DEFAULT_POOL_SIZE) -> Engine:
    """PostgreSQL: a pool of exactly ``pool_size`` connections (no overflow: the budget is the
    configuration's); SQLite: one connection for the writer thread and a few for tools."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            pool_size=1,
            max_overflow=4,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(
            url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True, hide_parameters=True
        )
    return engine


class Database:
    def __init__(self, url: str, pool_size: int = DEFAULT_POOL_SIZE):
        """``pool_size`` (PostgreSQL): connections, and as many threads running the work."""
        self.url = normalize_url(url)
        self.engine = make_engine(self.url, pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else pool_size, thread_name_prefix="smsgw-db"
        )
        self._submitted: list[Future] = []  # run() calls handed to the executor, pruned as they end

    def transaction(self, fn: Callable[..., T], *args: Any) -> T:
        with self.engine.begin() as conn:
            return fn(conn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction on the database thread."""
        future = self._executor.submit(self.transaction, fn, *args)
        self._submitted = [f for f in self._submitted if not f.done()]
        self._submitted.append(future)
        return await asyncio.wrap_future(future)

    @property
    def busy(self) -> bool:
        """Work handed to the database thread(s) is still running or waiting there (even when
        the coroutine that awaited it was cancelled)."""
        return any(not f.done() for f in self._submitted)

    def close(self) -> bool:
        """Release the engine; True when no work was left in the database thread(s).

        Work still there (a call stuck on a lock or a dead server) is not waited for: queued calls
        are cancelled, and the one running ends with the process.
        """
        idle = not self.busy
        self._executor.shutdown(wait=idle, cancel_futures=True)
        self.engine.dispose()
        return idle


def insert_ignoring_conflicts(conn: Connection, table, index_elements: list[str] | None = None):
    """INSERT … ON CONFLICT DO NOTHING for the connection's dialect (any unique index when
    ``index_elements`` is None)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=index_elements)
