"""Several dispatch processes on one PostgreSQL database: 1, 2, 3 processes sending one backlog.

Per process count: a fresh database on the PostgreSQL server, the bundled simulator as its own
process (``max_binds`` and ``tps`` of the carriers as configured: it refuses and throttles past
them, and counts both), N ``smsgw serve --role dispatch`` processes (each ready: holding its share
of the binds), then ``--messages`` queued messages (weighted over the carriers) inserted in one
transaction; timed until every message is delivered. Reports messages per second, the gateways'
CPU per message, the slots each process held, and the simulator's refused binds and throttles
(both must be 0: the binds and speed limits are shared, not multiplied).

    .venv/bin/python bench/multiprocess.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ENV, ROOT, Proc, cpu_seconds, free_port, get_json, queue_messages, toml_value, wait_http

sys.path.insert(0, str(ROOT / "bench"))
from broadcast_delivery import Database, smsgw


def write_config(path: Path, args, db_url: str, ports: list[int], sim_http: int) -> None:
    names = [f"carrier{i}" for i in range(len(ports))]
    lines = [
        "[gateway]",
        'listen = "127.0.0.1:0"',
        'log_format = "json"',
        'log_level = "info"',
        "",
        "[database]",
        f"url = {toml_value(db_url)}",
        f"pool_size = {args.pool_size}",
        "",
    ]
    for name, port in zip(names, ports, strict=True):
        carrier = {
            "name": name,
            "port": port,
            "system_id": "smsgw",
            "password_env": "SMSGW_BENCH_PASSWORD",
            "tps": args.tps,
            "binds": args.binds,
            "window": args.window,
        }
        lines += ["[[carriers]]", *(f"{k} = {toml_value(v)}" for k, v in carrier.items()), ""]
    lines += ["[routing]", f"weights = {toml_value(dict.fromkeys(names, 1))}", ""]
    lines += ["[[crm_clients]]", 'id = "bench"', 'secret_env = "SMSGW_BENCH_SECRET"', ""]
    lines += ["[dispatch]", "interval_seconds = 0.2", "", "[quiet_hours]", "enabled = false", ""]
    lines += ["[simulator]", f'http_listen = "127.0.0.1:{sim_http}"', f"store_size = {args.messages}"]
    for name, port in zip(names, ports, strict=True):
        sim = {
            "name": name,
            "port": port,
            "receipt_delay": 0,
            "max_binds": args.binds,
            "tps": args.tps,
            "window": 100_000,
        }
        lines += ["", "[[simulator.carriers]]", *(f"{k} = {toml_value(v)}" for k, v in sim.items())]
    path.write_text("\n".join(lines) + "\n")


def run(args, processes: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="smsgw-multiprocess-"))
    db = Database(tmp, args.database_url)
    sim_http = free_port()
    ports = [free_port() for _ in range(args.carriers)]
    config = tmp / "bench.toml"
    write_config(config, args, db.url, ports, sim_http)
    smsgw("db", "upgrade", "--config", str(config))
    sim = Proc("simulator", config, tmp / "simulator.log")
    gateways: list[Proc] = []
    try:
        wait_http(f"http://127.0.0.1:{sim_http}/sim/stats")
        gateways = [_Dispatch(config, tmp / f"dispatch{i}.log") for i in range(processes)]
        urls = [_url(proc) for proc in gateways]
        for url in urls:
            wait_http(url + "/readyz", timeout=60)
        cpu_before = sum(cpu_seconds(p.pid) for p in gateways)
        started = time.monotonic()
        queue_messages(db.url, args.messages, text="Aviso {i}")
        deadline = started + args.timeout
        while time.monotonic() < deadline:
            done = db.scalar("SELECT count(*) FROM messages WHERE status = 'delivered'")
            if done >= args.messages:
                break
            time.sleep(0.1)
        seconds = time.monotonic() - started
        cpu = sum(cpu_seconds(p.pid) for p in gateways) - cpu_before
        carriers = list(get_json(f"http://127.0.0.1:{sim_http}/sim/stats")["carriers"].values())
        slots = db.rows(
            "SELECT p.pid, count(*) FROM bind_slots s JOIN processes p ON p.id = s.owner GROUP BY p.pid"
        )
        return {
            "processes": processes,
            "messages": args.messages,
            "delivered": done,
            "seconds": round(seconds, 3),
            "msgs_per_s": round(done / seconds),
            "cpu_us_per_msg": round(cpu / max(1, done) * 1e6, 1),
            "slots_per_process": sorted(count for _, count in slots),
            "binds_refused": sum(c["binds_refused"] for c in carriers),
            "throttled": sum(c["throttled"] for c in carriers),
            "valid": done >= args.messages,
        }
    finally:
        for proc in gateways:
            proc.stop()
        sim.stop()
        db.drop()


class _Dispatch(Proc):
    """``smsgw serve --role dispatch --config FILE``."""

    def __init__(self, config: Path, log: Path):
        self.log = log
        self.popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli.main",
                "serve",
                "--role",
                "dispatch",
                "--config",
                str(config),
            ],
            cwd=ROOT,
            env={**os.environ, **ENV, "PYTHONUNBUFFERED": "1"},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid


def _url(proc: Proc, timeout: float = 60.0) -> str:
    """The process's URL, from its "gateway listening" log line (it listens on a free port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in proc.log.read_text().splitlines():
            if "gateway listening" in line:
                return json.loads(line)["url"]
        time.sleep(0.1)
    raise TimeoutError(f"{proc.log}: never listening")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", required=True, help="a PostgreSQL server (a database is created per run)"
    )
    parser.add_argument("--processes", default="1,2,3", help="dispatch process counts to measure")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--carriers", type=int, default=2)
    parser.add_argument("--binds", type=int, default=3, help="per carrier, shared by the processes")
    parser.add_argument("--tps", type=float, default=5000, help="per carrier, shared by the processes")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    results = [run(args, int(n)) for n in args.processes.split(",")]
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
