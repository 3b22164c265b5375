"""Several ``smsgw serve --role dispatch`` processes on one database, one killed with SIGKILL mid-run,
against the real bundled simulator (which refuses binds over ``max_binds`` and throttles over its
``tps``, and counts both): nothing is lost, only the dead process's in-flight messages may be sent
twice, the carriers' binds and speed limits hold at the SMSC, every taken-over message counts one
attempt, and messages past their validity expire once. On PostgreSQL three processes; on SQLite
(one process per database) the one process killed and started again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from gateway import clock
from gateway.store import outbox
from gateway.store.db import Database
from gateway.store.models import bind_slots, message_status_history, messages
from gateway.store.models import processes as processes_table
from simulator.app import Simulator
from simulator.settings import load_settings as load_simulator_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CARRIERS = {"telcel": "52551", "movistar": "52552"}  # routed by prefix
BINDS, TPS = 2, 250
EXPIRED = 40
TIMEOUT = 45


def _numbers(per_carrier: int) -> list[str]:
    return [f"+{prefix}{n:07d}" for prefix in CARRIERS.values() for n in range(per_carrier)]


def _config(path: Path, db_url: str, ports: dict[str, int]) -> Path:
    carriers = "".join(
        f"""
[[carriers]]
name = "{name}"
port = {ports[name]}
system_id = "smsgw"
password_env = "SMSGW_TEST_SMSC_PASSWORD"
tps = {TPS}
binds = {BINDS}
window = 10
reconnect_min_seconds = 0.05
reconnect_max_seconds = 0.2
"""
        for name in CARRIERS
    )
    prefixes = "".join(
        f'\n[[routing.prefixes]]\nprefix = "{prefix}"\ncarrier = "{name}"\n'
        for name, prefix in CARRIERS.items()
    )
    path.write_text(
        f"""
[gateway]
listen = "127.0.0.1:0"
log_format = "console"
shutdown_grace_seconds = 5

[database]
url = "{db_url}"
pool_size = 4
{carriers}
[routing]
failover = false
{prefixes}
[[crm_clients]]
id = "cesac"
secret_env = "SMSGW_TEST_SECRET"

[dispatch]
interval_seconds = 0.2
lease_seconds = 60
heartbeat_seconds = 0.5
process_stale_seconds = 2
expiry_interval_seconds = 1

[quiet_hours]
enabled = false
"""
    )
    return path


class Process:
    """One ``smsgw serve --role dispatch``; its output drained (kept for a failure's message)."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.output: list[str] = []
        self.url: str | None = None
        self.listening = asyncio.Event()
        self._drain = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, config: Path, cwd: Path) -> Process:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGW_")}
        env.update(SMSGW_TEST_SMSC_PASSWORD="smsgw", SMSGW_TEST_SECRET="test-secret")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli.main",
            "serve",
            "--role",
            "dispatch",
            "--config",
            str(config),
            env=env,
            cwd=cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(proc)

    async def _read(self) -> None:
        while line := await self.proc.stdout.readline():
            text = line.decode(errors="replace")
            self.output.append(text)
            found = re.search(r"url=(http://\S+)", text) if "gateway listening" in text else None
            if found:
                self.url = found.group(1)
                self.listening.set()

    async def ready(self, http: aiohttp.ClientSession) -> bool:
        if self.url is None:
            return False
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(self.url + "/readyz") as resp:
                return resp.status == 200
        return False

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._drain

    def log(self) -> str:
        return "".join(self.output[-60:])


async def _until(what: str, condition, timeout: float = TIMEOUT, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _simulator() -> Simulator:
    carrier = {"max_binds": BINDS, "tps": TPS, "receipt_delay": 0.05}
    return Simulator(
        load_simulator_settings(
            {"http_listen": "127.0.0.1:0", "carriers": [{"name": n, "port": 0, **carrier} for n in CARRIERS]}
        )
    )


def _enqueue(db: Database, numbers: list[str]) -> tuple[list[int], list[int]]:
    """The messages to send, and some already past their validity (for the expiry)."""
    now = clock.utcnow()
    from datetime import timedelta

    def row(msisdn: str, expires_at) -> dict:
        return {
            "msisdn": msisdn,
            "language": "es",
            "body": "Aviso",
            "encoding": "gsm7",
            "segments": 1,
            "priority": 2,
            "expires_at": expires_at,
        }

    expired = db.transaction(
        outbox.enqueue, [row(f"+5255300{n:05d}", now - timedelta(minutes=1)) for n in range(EXPIRED)], now
    )
    ids = db.transaction(outbox.enqueue, [row(m, now + timedelta(hours=1)) for m in numbers], now)
    return ids, expired


def _statuses(db: Database, ids: list[int]) -> Counter:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.status, func.count()).where(messages.c.id.in_(ids)).group_by(messages.c.status)
        )
        return Counter(dict(rows.all()))


def _in_flight_of(db: Database, pid: int) -> set[str]:
    """The numbers of the messages the process ``pid`` holds leased (queued: no result written)."""
    with db.engine.connect() as conn:
        token = conn.execute(select(processes_table.c.id).where(processes_table.c.pid == pid)).scalar_one()
        return set(
            conn.execute(
                select(messages.c.msisdn).where(
                    messages.c.status == "queued", messages.c.lease_owner == token
                )
            ).scalars()
        )


def _slot_holders(db: Database) -> Counter:
    """pid -> bind slots held."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(processes_table.c.pid, func.count())
            .select_from(bind_slots.join(processes_table, processes_table.c.id == bind_slots.c.owner))
            .group_by(processes_table.c.pid)
        )
        return Counter(dict(rows.all()))


async def test_a_process_killed_mid_run_loses_nothing_and_the_smsc_limits_hold(db_url, tmp_path):
    postgres = not db_url.startswith("sqlite")
    sim = _simulator()
    await sim.start()
    db = Database(db_url)
    config = _config(tmp_path / "smsgw.toml", db_url, {name: sim.carrier_port(name) for name in CARRIERS})
    running: list[Process] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            running = [await Process.start(config, tmp_path) for _ in range(3 if postgres else 1)]

            async def all_ready() -> bool:
                return all([await p.ready(http) for p in running])

            await _until("every process to hold its binds", all_ready)
            assert sum(_slot_holders(db).values()) == BINDS * len(CARRIERS)
            numbers = _numbers(1500 if postgres else 750)
            ids, expired = _enqueue(db, numbers)

            def submitted() -> int:
                return sum(sim.smsc.carriers[name].stats.submitted for name in CARRIERS)

            await _until(
                "a third of the messages to be sent", lambda: submitted() >= len(ids) // 3, every=0.02
            )
            holders = _slot_holders(db)
            victim = max(running, key=lambda p: holders.get(p.proc.pid, 0))
            victim.kill()
            await victim.proc.wait()
            in_flight = _in_flight_of(db, victim.proc.pid)
            running.remove(victim)
            if not postgres:  # one process per database: it is started again
                running.append(await Process.start(config, tmp_path))

            def done() -> bool:
                return _statuses(db, ids) == Counter({"delivered": len(ids)})

            await _until("every message delivered", done)
            await _until(
                "the binds held again", lambda: sum(_slot_holders(db).values()) == BINDS * len(CARRIERS)
            )
            assert victim.proc.pid not in _slot_holders(db)

        sent = Counter("+" + m.dest for m in sim.store.messages(limit=100_000))
        assert set(numbers) <= set(sent)  # nothing lost
        twice = {number for number, count in sent.items() if count > 1}
        assert in_flight, "the process was killed with messages in flight"
        assert twice <= in_flight, "only the dead process's in-flight messages may be sent twice"
        for name in CARRIERS:
            stats = sim.smsc.carriers[name].stats
            assert stats.binds_refused == 0, f"{name}: more binds than its {BINDS}"
            assert stats.throttled == 0, f"{name}: faster than its {TPS}/s"
        with db.engine.connect() as conn:
            attempts = Counter(
                conn.execute(select(messages.c.attempts).where(messages.c.id.in_(ids))).scalars()
            )
            h = message_status_history.c
            expiries = Counter(
                conn.execute(
                    select(h.message_id).where(h.message_id.in_(expired), h.status == "expired")
                ).scalars()
            )
        assert attempts == Counter({1: len(ids)})  # a takeover counts no attempt
        assert _statuses(db, expired) == Counter({"expired": EXPIRED})
        assert expiries == Counter(dict.fromkeys(expired, 1))  # once, whatever ran it
    except BaseException:
        for p in running:
            print(p.log())
        raise
    finally:
        for p in running:
            await p.stop()
        db.close()
        await sim.stop()


async def test_a_long_mo_whose_parts_come_to_two_processes_is_handled_once(postgres_url):
    """The SMSC spreads one message's parts over the carrier's binds: here held by two processes."""
    from gateway.roles import Role, build
    from gateway.store.models import mobile_messages
    from tests.conftest import _truncate_postgres
    from tests.integration.conftest import gateway_settings, simulator_settings

    _truncate_postgres(postgres_url)
    sim = Simulator(simulator_settings())
    await sim.start()
    settings = gateway_settings(postgres_url, {"telcel": sim.carrier_port("telcel")})
    settings = settings.model_copy(
        update={"carriers": [settings.carriers[0].model_copy(update={"binds": 2})]}
    )
    gateways = [build(settings, Role.DISPATCH), build(settings, Role.DISPATCH)]
    db = Database(postgres_url)
    try:
        for gateway in gateways:
            await gateway.start()
        await _until(
            "each process to hold one bind",
            lambda: all(len(g.pool.carriers["telcel"].slots) == 1 for g in gateways),
        )
        await _until("both bound", lambda: len(sim.smsc.carriers["telcel"].sessions) == 2)
        text = "ALTA AGUA " + ", ".join(
            ["Polanco I Sección", "Anzures", "Granada", "Tacuba", "Anáhuac I Sección"] * 3
        )
        number = "+525530000141"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{sim.http_url}/sim/mo", json={"from": number, "text": text}) as r:
                assert r.status == 202
        assert sim.store.mo(number)[0].parts >= 3

        def handled() -> list:
            with db.engine.connect() as conn:
                query = select(mobile_messages.c.text).where(mobile_messages.c.msisdn == number)
                return list(conn.execute(query).scalars())

        assert await _until("the message handled", handled) == [text]
        assert all(g.pool.inbound.mo_parts >= 1 for g in gateways)  # parts came to both
        await _until("its parts forgotten", lambda: _waiting(db) == 0)
        assert handled() == [text]  # once
    finally:
        for gateway in gateways:
            await gateway.stop()
        db.close()
        await sim.stop()


def _waiting(db: Database) -> int:
    from gateway.store.mo_parts import waiting

    return db.transaction(waiting)


async def test_binds_and_speed_are_shared_when_a_process_joins_and_come_back_when_it_leaves(postgres_url):
    from gateway.roles import Role, build
    from tests.conftest import _truncate_postgres
    from tests.integration.conftest import gateway_settings, simulator_settings

    _truncate_postgres(postgres_url)
    sim = Simulator(simulator_settings(max_binds=2))
    await sim.start()
    settings = gateway_settings(postgres_url, {"telcel": sim.carrier_port("telcel")}, heartbeat_seconds=0.2)
    carrier = settings.carriers[0].model_copy(update={"binds": 2, "tps": 100})
    settings = settings.model_copy(update={"carriers": [carrier]})
    first, second = build(settings, Role.DISPATCH), build(settings, Role.DISPATCH)

    def telcel(gateway):
        return gateway.pool.carriers["telcel"]

    try:
        await first.start()
        await _until("the first to hold both binds", lambda: len(telcel(first).slots) == 2)
        assert telcel(first).throttle.max_rate == pytest.approx(100 * 0.995)
        await second.start()
        await _until(
            "one bind each", lambda: len(telcel(first).slots) == len(telcel(second).slots) == 1, timeout=10
        )
        await _until("both bound at the SMSC", lambda: len(sim.smsc.carriers["telcel"].sessions) == 2)
        assert [telcel(g).throttle.max_rate for g in (first, second)] == [pytest.approx(50 * 0.995)] * 2
        await second.stop()  # leaves: its bind comes back to the first at its next heartbeat
        await _until("the first to hold both again", lambda: len(telcel(first).slots) == 2, timeout=10)
        assert telcel(first).throttle.max_rate == pytest.approx(100 * 0.995)
        await _until("both binds up again", lambda: sum(s.is_bound for s in telcel(first).sessions) == 2)
        assert sim.smsc.carriers["telcel"].stats.binds_refused == 0  # never more than 2 at the SMSC
    finally:
        await first.stop()
        await second.stop()
        await sim.stop()


async def test_a_process_that_cannot_renew_its_heartbeat_closes_its_binds_until_it_can(
    postgres_url, monkeypatch
):
    from gateway.roles import Role, build
    from tests.conftest import _truncate_postgres
    from tests.integration.conftest import gateway_settings, simulator_settings

    _truncate_postgres(postgres_url)
    sim = Simulator(simulator_settings())
    await sim.start()
    settings = gateway_settings(
        postgres_url, {"telcel": sim.carrier_port("telcel")}, heartbeat_seconds=0.2, process_stale_seconds=1
    )
    gateway = build(settings, Role.DISPATCH)
    telcel = gateway.pool.carriers["telcel"]
    try:
        await gateway.start()
        await _until("bound", lambda: telcel.is_bound)
        run = gateway.db.run

        async def unreachable(fn, *args):
            raise ConnectionError("database away")

        monkeypatch.setattr(gateway.db, "run", unreachable)
        await _until(
            "its binds closed", lambda: not telcel.slots and not sim.smsc.carriers["telcel"].sessions
        )
        monkeypatch.setattr(gateway.db, "run", run)
        await _until("bound again once the database answers", lambda: telcel.slots and telcel.is_bound)
    finally:
        await gateway.stop()
        await sim.stop()
