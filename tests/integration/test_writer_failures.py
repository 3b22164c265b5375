"""A database that refuses or never answers the status writer, against a real gateway and simulator,
on SQLite and on the PostgreSQL server: /readyz says so, nothing is lost, and `smsgw serve` still
exits within its grace time on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from sqlalchemy import select, text

from gateway.roles import Gateway, build
from gateway.signals import Signals
from gateway.store.db import Database
from gateway.store.models import messages
from simulator.app import Simulator
from tests.conftest import TEST_ENV
from tests.integration.test_faults import eventually, gateway_settings, queue, settle, sim_settings

REPO = Path(__file__).resolve().parents[2]
GRACE = 3


async def readyz(runtime: Gateway) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(f"{runtime.url}/readyz") as resp:
        return resp.status, await resp.json()


@contextlib.contextmanager
def renamed(db: Database, table: str):
    """The table gone for a while: every status batch is refused, whatever its rows."""
    with db.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
    try:
        yield
    finally:
        with db.engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))


async def test_readiness_names_a_writer_that_keeps_failing_and_it_catches_up(db_url):
    sim = Simulator(sim_settings({"telcel": {}}))
    await sim.start()
    runtime = build(gateway_settings(db_url, sim, {"telcel": {}}))
    try:
        await runtime.start()
        assert await runtime.pool.wait_bound(5)
        assert (await readyz(runtime))[0] == 200
        with renamed(runtime.db, "message_parts"):
            ids = queue(runtime, 30)
            while runtime.writer.problem() is None:
                await asyncio.wait_for(runtime.writer.next_attempt(), 10)
            status, body = await readyz(runtime)
            assert status == 503 and body["status"] == "not ready"
            assert "batches in a row could not be written" in body["checks"]["status_writer"]
            assert body["checks"]["database"] == "ok" and body["checks"]["carriers"] == "ok"
            assert runtime.writer.backlog > 0 and runtime.writer.set_aside == {}
        final = await settle(runtime, ids)
        assert {r["status"] for r in final.values()} == {"delivered"}
        status, body = await readyz(runtime)
        assert status == 200 and body["checks"]["status_writer"] == "ok"
    finally:
        await runtime.stop()
        await sim.stop()


def _config(tmp_path: Path, db_url: str, sim: Simulator) -> Path:
    path = tmp_path / "smsgw.toml"
    path.write_text(
        f"""
[gateway]
listen = "127.0.0.1:0"
log_format = "console"
shutdown_grace_seconds = {GRACE}

[database]
url = "{db_url}"

[[carriers]]
name = "telcel"
port = {sim.carrier_port("telcel")}
system_id = "smsgw"
password_env = "SMSGW_TEST_SMSC_PASSWORD"
reconnect_min_seconds = 0.05
reconnect_max_seconds = 0.2
tps = 200

[[crm_clients]]
id = "cesac"
secret_env = "SMSGW_TEST_SECRET"

[dispatch]
interval_seconds = 0.2
lease_seconds = 2

[quiet_hours]
enabled = false
""",
        encoding="utf-8",
    )
    return path


@contextlib.contextmanager
def writes_blocked(db: Database):
    """Another session holds the write lock: the gateway's writes wait (SQLite: for its busy
    timeout, then fail; PostgreSQL: for as long as it is held)."""
    conn = db.engine.connect()
    try:
        if db.is_sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("LOCK TABLE messages IN EXCLUSIVE MODE")
        yield
    finally:
        conn.rollback()
        conn.close()


def _statuses(db: Database, ids: list[int]) -> dict[int, str]:
    with db.engine.connect() as conn:
        rows = conn.execute(select(messages.c.id, messages.c.status).where(messages.c.id.in_(ids)))
        return dict(rows.all())


async def test_sigterm_ends_serve_within_its_grace_time_while_the_database_never_answers(db_url, tmp_path):
    sim = Simulator(sim_settings({"telcel": {"receipt_delay": 0.2}}))
    await sim.start()
    config = _config(tmp_path, db_url, sim)
    db = Database(db_url)
    out = (tmp_path / "serve.log").open("w+")
    proc = None
    try:
        ids = queue(SimpleNamespace(db=db, signals=Signals()), 300)  # before serve
        env = {**os.environ, **TEST_ENV}
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config)),
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

        def sending() -> bool:
            return "submitted" in _statuses(db, ids).values() or proc.returncode is not None

        await eventually(sending, 20)
        assert proc.returncode is None, (tmp_path / "serve.log").read_text()
        with writes_blocked(db):  # submit results and receipts of the messages in flight wait
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), GRACE + 10)
        log = (tmp_path / "serve.log").read_text()
        assert code == 1, log
        assert "stopped with database work still running" in log or "not written at shutdown" in log
        # nothing lost: every row is still there, queued (maybe leased) or further on
        statuses = _statuses(db, ids)
        assert len(statuses) == len(ids)
        assert set(statuses.values()) <= {"queued", "submitted", "delivered"}
        # a new process finishes the work (messages whose submit result was lost go out again)
        runtime = build(gateway_settings(db_url, sim, {"telcel": {}}, lease_seconds=2))
        await runtime.start()
        try:
            final = await settle(runtime, ids, timeout=60)
        finally:
            await runtime.stop()
        assert {r["status"] for r in final.values()} == {"delivered"}
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        out.close()
        db.close()
        await sim.stop()
