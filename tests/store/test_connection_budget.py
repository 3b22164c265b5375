"""One pool per process, of the configured size: however much database work is asked for at once,
the PostgreSQL server never sees more connections from it than ``[database] pool_size``."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from gateway.store.db import Database

pytestmark = pytest.mark.postgres


async def test_a_process_never_holds_more_connections_than_its_pool(postgres_url):
    db = Database(postgres_url, pool_size=3)  # the only client of this test's database now

    def work(conn) -> int:
        conn.execute(text("SELECT pg_sleep(0.02)"))
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND backend_type = 'client backend'"
            )
        ).scalar_one()

    try:
        seen = await asyncio.gather(*(db.run(work) for _ in range(60)))
    finally:
        db.close()
    assert max(seen) == 3  # all of the pool in use, never more
