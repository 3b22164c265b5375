"""Ingest: signed case events from concurrent clients against a gateway on SQLite.

Starts ``smsgw serve`` in a separate process (a fresh SQLite database, migrated; no carriers, so
the messages stay queued and the figure is the API's and the outbox's alone; quiet hours off;
the production log format and level: one JSON line per accepted event) and drives it from this
process with ``--clients`` keep-alive HTTP/1.1 connections (asyncio + uvloop, raw sockets), each
sending its next signed ``case.received`` as soon as the previous one is answered (closed loop).
Requests are built and signed (v2) before the run: every body differs, so every signature is
new to the gateway's replay check, and they stay well inside the 5-minute tolerance. After
``--warmup`` seconds, ``--seconds`` are measured: events/s answered 202, and the latency of each
request (send to complete answer).

    python bench/ingest_case_events.py                    # 3 runs of 20 s, 50 clients; medians
    python bench/ingest_case_events.py --runs 1 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import cpu_seconds, free_port, peak_rss_mb  # noqa: E402
from gateway.http.signing import sign  # noqa: E402

SECRET = "bench-secret"
ENV = {"SMSGW_BENCH_SECRET": SECRET}


def write_config(path: Path, port: int, db_url: str, log_level: str) -> None:
    path.write_text(
        f"""[gateway]
listen = "127.0.0.1:{port}"
log_format = "json"
log_level = "{log_level}"

[database]
url = "{db_url}"

[[crm_clients]]
id = "bench"
secret_env = "SMSGW_BENCH_SECRET"
# above what one process can take, so the figure is the gateway's capacity, not the client's limit
requests_per_second = 100000
burst = 100000

[quiet_hours]
enabled = false
""",
        encoding="utf-8",
    )


def start_gateway(workdir: Path, log_level: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = workdir / "smsgw.toml"
    write_config(config, port, f"sqlite:///{workdir / 'ingest.db'}", log_level)
    env = {**os.environ, **ENV}
    smsgw = [sys.executable, "-m", "gateway.cli.main"]
    subprocess.run(
        [*smsgw, "db", "upgrade", "--config", str(config)], env=env, check=True, capture_output=True
    )
    log = (workdir / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [*smsgw, "serve", "--config", str(config)], env=env, stdout=log, stderr=log, cwd=ROOT
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the gateway did not start; see {workdir / 'gateway.log'}")


def build_requests(count: int, port: int, run: int) -> list[bytes]:
    out = []
    for n in range(count):
        body = json.dumps(
            {
                "id": f"bench-{run}-{n}",
                "type": "case.received",
                "occurred_at": "2026-11-29T10:00:00-06:00",
                "case": {"folio": f"MH-{run}-{n:07d}", "category": "Fuga de agua"},
                "citizen": {"msisdn": f"55{20000000 + n % 50000:08d}", "name": "Ana", "language": "es"},
            },
            separators=(",", ":"),
        ).encode()
        head = (
            f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-Smsgw-Client: bench\r\nX-Smsgw-Signature: {sign(SECRET, 'POST', '/api/v1/events', body)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


class Client(asyncio.Protocol):
    """One keep-alive connection: one request at a time, the answer parsed by Content-Length."""

    def __init__(self):
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"content-length:")
        length = int(head[start + 15 : head.find(b"\r\n", start) if head.find(b"\r\n", start) > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    async def request(self, raw: bytes) -> int:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


async def load(port: int, requests: list[bytes], clients: int, warmup: float, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(Client, "127.0.0.1", port))[1] for _ in range(clients)]
    feed = iter(requests)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    t0 = time.perf_counter()
    measure_from, measure_to = t0 + warmup, t0 + warmup + seconds
    counted = 0

    async def worker(conn: Client) -> None:
        nonlocal counted
        for raw in feed:
            sent = time.perf_counter()
            if sent >= measure_to:
                return
            status = await conn.request(raw)
            done = time.perf_counter()
            if sent >= measure_from and done <= measure_to:
                latencies.append(done - sent)
                statuses[status] = statuses.get(status, 0) + 1
                counted += status == 202

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        c.transport.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "events_per_s": counted / seconds,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000,
        "statuses": statuses,
        "requests": len(latencies),
    }


def one_run(args, run: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="smsgw-ingest-") as tmp:
        workdir = Path(tmp)
        proc, port = start_gateway(workdir, args.log_level)
        try:
            requests = build_requests(int(args.max_rate * (args.warmup + args.seconds)), port, run)
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            result = asyncio.run(load(port, requests, args.clients, args.warmup, args.seconds))
            result["gateway_cpu_pct"] = (cpu_seconds(proc.pid) - cpu0) / (time.perf_counter() - t0) * 100
            result["gateway_peak_rss_mb"] = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
        import sqlite3

        with sqlite3.connect(workdir / "ingest.db") as conn:  # every 202 is a stored event and message
            result["stored"] = [
                conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "messages")
            ]
        events_stored, messages_stored = result["stored"]
        assert events_stored == messages_stored >= result["statuses"].get(202, 0), result
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--max-rate", type=float, default=6000, help="requests built per second of run")
    args = parser.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover
        pass
    results = []
    for run in range(args.runs):
        r = one_run(args, run)
        results.append(r)
        print(
            f"run {run + 1}: {r['events_per_s']:,.0f} events/s, p50 {r['p50_ms']:.1f} ms, "
            f"p99 {r['p99_ms']:.1f} ms, "
            f"max {r['max_ms']:.1f} ms, answers {r['statuses']}, gateway CPU {r['gateway_cpu_pct']:.0f}%, "
            f"peak RSS {r['gateway_peak_rss_mb']:.0f} MB; stored events/messages {r['stored']}",
            flush=True,
        )
    med = {
        k: statistics.median(r[k] for r in results) for k in ("events_per_s", "p50_ms", "p99_ms", "max_ms")
    }
    print(
        f"median of {len(results)}: {med['events_per_s']:,.0f} events/s, p50 {med['p50_ms']:.1f} ms, "
        f"p99 {med['p99_ms']:.1f} ms (target >= 1,500 events/s, p99 < 100 ms; {args.clients} clients, SQLite)"
    )


if __name__ == "__main__":
    main()
