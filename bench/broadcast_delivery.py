"""A broadcast to N subscribers, delivered with receipts, through the product's own entry points.

What a city does, timed from the POST to the last receipt recorded:

1. ``smsgw subscribers import`` puts N citizens subscribed to AGUA in one postal code;
2. ``smsgw simulator`` (its own process) is the SMSC: it answers each submit_sm at once and sends a
   receipt for each message, one by one as carriers do (``--receipt-mode each``, the default) or
   batched every 5 ms (``--receipt-mode batched``), with ``--deliver-window`` receipts unacknowledged
   at most;
3. ``smsgw serve`` (its own process) is the gateway;
4. one signed ``water.outage`` is posted to ``/api/v1/events`` for that postal code; the fan-out
   queues the messages, the dispatcher claims them, the carriers submit them, the receipts come
   back and are recorded.

Figures: msgs/s = N / (last receipt recorded - POST sent); the gateway's CPU (user + system, all
threads) per message; with PostgreSQL also the database's CPU (its backends for this database) per
message. A run counts only if it is valid: every one of the N messages delivered, each once (the
simulator received exactly N submit_sm, no destination twice), nothing left elsewhere.

    python bench/broadcast_delivery.py                                   # 5 runs of 50,000, SQLite
    python bench/broadcast_delivery.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/broadcast_delivery.py --carriers 2 --tps 200 --subscribers 20000
    python bench/broadcast_delivery.py --segments 3 --receipt-mode batched
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import ENV, ROOT, Proc, cpu_seconds, free_port, get_json, peak_rss_mb, toml_value, wait_http

from gateway.http.signing import Signer

BENCH_APP = "smsgw-bench"
POSTAL_CODE = "11560"  # Polanco V Sección
CARRIERS = ("telcel", "movistar")
PREFIXES = ("5255", "5256")  # the second carrier's subscribers have 56 numbers
SHORT = "Corte de agua en su colonia por mantenimiento."
LONG = (
    "Corte de agua programado en su colonia por trabajos de mantenimiento en la red primaria. "
    "Almacene agua y evite desperdicios; habra pipas en el parque Salesiano y en la explanada de "
    "la Alcaldia. Si tiene dudas llame a Locatel *0311 o responda AYUDA."
)


def write_config(path: Path, args, db_url: str, gw_port: int, sim_http: int, ports: list[int]) -> None:
    names = CARRIERS[: args.carriers]
    lines = [
        "[gateway]",
        f'listen = "127.0.0.1:{gw_port}"',
        'log_format = "json"',
        'log_level = "warning"',
        "",
        "[database]",
        f"url = {toml_value(db_url)}",
        "",
        "[quiet_hours]",
        "enabled = false",
        "",
        "[notices]",
        "enrolment = false",
        "",
        "[dispatch]",
        "lease_seconds = 600",
        "",
    ]
    for name, port in zip(names, ports, strict=True):
        carrier = {
            "name": name,
            "host": "127.0.0.1",
            "port": port,
            "system_id": "smsgw",
            "password_env": "SMSGW_BENCH_PASSWORD",
            "tps": args.tps,
            "window": args.window,
            "binds": args.binds,
            "response_timeout_seconds": 60,
        }
        lines += ["[[carriers]]", *(f"{k} = {toml_value(v)}" for k, v in carrier.items()), ""]
    if args.carriers > 1:
        for prefix, name in zip(PREFIXES, names, strict=False):
            lines += ["[[routing.prefixes]]", f'prefix = "{prefix}"', f'carrier = "{name}"', ""]
    lines += ["[[crm_clients]]", 'id = "bench"', 'secret_env = "SMSGW_BENCH_SECRET"', ""]
    lines += [
        "[simulator]",
        f'http_listen = "127.0.0.1:{sim_http}"',
        f"store_size = {max(10, args.subscribers)}",
    ]
    for name, port in zip(names, ports, strict=True):
        sim = {
            "name": name,
            "port": port,
            "receipt_delay": 0,
            "receipt_mode": args.receipt_mode,
            "deliver_window": args.deliver_window,
            "window": 100_000,
            "max_binds": 64,
        }
        lines += ["", "[[simulator.carriers]]", *(f"{k} = {toml_value(v)}" for k, v in sim.items())]
    path.write_text("\n".join(lines) + "\n")


def write_subscribers(path: Path, count: int, carriers: int) -> list[str]:
    numbers = []
    for i in range(count):
        area = "56" if carriers > 1 and i % 2 else "55"
        numbers.append(f"+52{area}{10_000_000 + i // carriers:08d}")
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["msisdn", "topics", "zones", "language"])
        writer.writerows([n, "AGUA", POSTAL_CODE, "es"] for n in numbers)
    return numbers


def smsgw(*args: str) -> None:
    env = {**os.environ, **ENV}
    subprocess.run([sys.executable, "-m", "gateway.cli.main", *args], cwd=ROOT, env=env, check=True)


def post(url: str, signer: Signer, body: dict) -> dict:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **signer.headers("POST", "/api/v1/events", raw)}
    request = urllib.request.Request(f"{url}/api/v1/events", data=raw, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


class Database:
    """A fresh database per run (a SQLite file, or a database of its own on the PostgreSQL server),
    and what the measurement reads of it."""

    def __init__(self, tmp: Path, admin_url: str | None):
        self.admin_url = admin_url
        if admin_url is None:
            self.url = f"sqlite:///{tmp / 'bench.db'}"
            self.name = None
        else:
            import psycopg

            self.name = f"smsgw_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name
        from sqlalchemy import create_engine

        from gateway.store.db import normalize_url

        # the bench's own connection is named, so its queries are not counted as the gateway's
        extra = {"connect_args": {"application_name": BENCH_APP}} if self.name else {}
        self.engine = create_engine(normalize_url(self.url), **extra)

    def scalar(self, sql: str):
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(sql)).scalar()

    def rows(self, sql: str) -> list:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(sql)).all()

    def backend_cpu(self) -> dict[int, float]:
        """CPU seconds of each PostgreSQL backend serving this database (empty for SQLite)."""
        if self.name is None:
            return {}
        mine = f"datname = '{self.name}' AND application_name <> '{BENCH_APP}'"
        pids = [r[0] for r in self.rows(f"SELECT pid FROM pg_stat_activity WHERE {mine}")]
        out = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                out[pid] = cpu_seconds(pid)
        return out

    def drop(self) -> None:
        self.engine.dispose()
        if self.name is not None:
            import psycopg

            with psycopg.connect(self.admin_url.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def receipts_acked(sim_http: int) -> int:
    carriers = get_json(f"http://127.0.0.1:{sim_http}/sim/stats")["carriers"]
    return sum(c["receipts_acked"] for c in carriers.values())


def run_once(args, run: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="smsgw-broadcast-"))
    db = Database(tmp, args.database_url)
    gw_port, sim_http = free_port(), free_port()
    ports = [free_port() for _ in range(args.carriers)]
    config = tmp / "bench.toml"
    write_config(config, args, db.url, gw_port, sim_http, ports)
    sim = gateway = None
    try:
        smsgw("db", "upgrade", "--config", str(config))
        subscribers = tmp / "subscribers.csv"
        numbers = write_subscribers(subscribers, args.subscribers, args.carriers)
        started = time.monotonic()
        smsgw("subscribers", "import", str(subscribers), "--config", str(config), "--quiet")
        import_seconds = time.monotonic() - started
        sim = Proc("simulator", config, tmp / "simulator.log")
        wait_http(f"http://127.0.0.1:{sim_http}/sim/stats")
        gateway = Proc("serve", config, tmp / "gateway.log", profile=args.profile)
        wait_http(f"http://127.0.0.1:{gw_port}/readyz", timeout=60)
        time.sleep(1.0)  # every bind up, the start-up work done
        gw_url = f"http://127.0.0.1:{gw_port}"
        starts = datetime.now(UTC) + timedelta(hours=1)
        event = {
            "id": f"agua-{run}-{uuid.uuid4().hex[:6]}",
            "type": "water.outage",
            "area": {"zones": [POSTAL_CODE]},
            "notice": {
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=8)).isoformat(),
                **({"text": LONG} if args.segments > 1 else {}),
            },
        }
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(
                [
                    *("py-spy", "record", "--pid", str(gateway.pid), "--rate", "250", "--threads", "--idle"),
                    *("--format", "raw", "--output", str(args.py_spy), "--nonblocking"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        cpu0, sim_cpu0, pg0 = cpu_seconds(gateway.pid), cpu_seconds(sim.pid), db.backend_cpu()
        sent_at = datetime.now(UTC).replace(tzinfo=None)
        accepted = post(gw_url, Signer("bench", "bench-secret"), event)
        assert accepted["recipients"] == args.subscribers, accepted
        deadline = time.monotonic() + args.timeout
        # the SMSC counts the receipts the gateway acknowledged (after committing them): watched
        # there, so the bench adds no query to the gateway's database while it works (a message of
        # several parts has a receipt per part: the database is polled for the rest)
        while (acked := receipts_acked(sim_http)) < args.subscribers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {acked} receipts acknowledged after {args.timeout} s")
            time.sleep(0.05)
        while (
            done := db.scalar("SELECT COUNT(*) FROM messages WHERE status = 'delivered'")
        ) < args.subscribers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {done} of {args.subscribers} delivered after {args.timeout} s")
            time.sleep(0.25)
        cpu1, sim_cpu1, pg1 = cpu_seconds(gateway.pid), cpu_seconds(sim.pid), db.backend_cpu()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        rss = peak_rss_mb(gateway.pid)
        last = db.scalar("SELECT MAX(done_at) FROM messages")
        last = datetime.fromisoformat(last) if isinstance(last, str) else last
        statuses = dict(db.rows("SELECT status, COUNT(*) FROM messages GROUP BY status"))
        segments = db.scalar("SELECT MAX(segments) FROM messages")
        carriers_used = dict(db.rows("SELECT carrier, COUNT(*) FROM messages GROUP BY carrier"))
        sim_stats = get_json(f"http://127.0.0.1:{sim_http}/sim/stats")["carriers"]
        submits = sum(c["submit_sm"] for c in sim_stats.values())
        gateway.stop()
        gateway = None
        elapsed = (last - sent_at).total_seconds()
        expected_submits = args.subscribers * segments
        valid = (
            statuses == {"delivered": args.subscribers}
            and submits == expected_submits
            and len(set(numbers)) == args.subscribers
        )
        pg_cpu = sum(pg1.get(pid, 0.0) - pg0.get(pid, 0.0) for pid in pg1)
        result = {
            "run": run,
            "messages": args.subscribers,
            "segments": segments,
            "seconds": round(elapsed, 3),
            "msgs_per_s": round(args.subscribers / elapsed),
            "cpu_us_per_msg": round((cpu1 - cpu0) / args.subscribers * 1e6, 1),
            "db_cpu_us_per_msg": round(pg_cpu / args.subscribers * 1e6, 1) if db.name else None,
            "sim_cpu_us_per_msg": round((sim_cpu1 - sim_cpu0) / args.subscribers * 1e6, 1),
            "peak_rss_mb": round(rss, 1),
            "import_rows_per_s": round(args.subscribers / import_seconds),
            "carriers": carriers_used,
            "submit_sm": submits,
            "valid": valid,
        }
        if not valid:
            result["why_invalid"] = {"statuses": statuses, "submits": submits, "expected": expected_submits}
        return result
    finally:
        if gateway is not None:
            gateway.stop()
        if sim is not None:
            sim.stop()
        db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--carriers", type=int, choices=(1, 2), default=1)
    parser.add_argument(
        "--segments", type=int, choices=(1, 3), default=1, help="1: a short text; 3: a long one"
    )
    parser.add_argument("--tps", type=float, default=100_000, help="each carrier's speed limit")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--binds", type=int, default=1)
    parser.add_argument("--receipt-mode", choices=("each", "batched"), default="each")
    parser.add_argument("--deliver-window", type=int, default=100, help="receipts unacknowledged at most")
    parser.add_argument("--database-url", help="a PostgreSQL server (a database of its own per run)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--profile", type=Path, help="cProfile the gateway (its main thread) into this file")
    parser.add_argument("--py-spy", type=Path, help="sample the gateway's threads with py-spy (raw stacks)")
    args = parser.parse_args()
    results = []
    for run in range(1, args.runs + 1):
        result = run_once(args, run)
        print(json.dumps(result), flush=True)
        results.append(result)
    valid = [r for r in results if r["valid"]]
    summary = {"runs": len(results), "valid": len(valid)}
    for key in ("msgs_per_s", "cpu_us_per_msg", "db_cpu_us_per_msg", "seconds", "peak_rss_mb"):
        values = [r[key] for r in valid if r[key] is not None]
        if values:
            summary[f"median_{key}"] = statistics.median(values)
    print(json.dumps({"summary": summary, "args": {k: str(v) for k, v in vars(args).items()}}), flush=True)


if __name__ == "__main__":
    main()
