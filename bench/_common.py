"""Shared helpers of the SMPP client benchmarks: processes, ports, configuration files, /proc."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLK_TCK = os.sysconf("SC_CLK_TCK")
ENV = {"SMSGW_BENCH_PASSWORD": "smsgw", "SMSGW_BENCH_SECRET": "bench-secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def write_config(
    path: Path,
    *,
    gateway_port: int,
    db_url: str,
    carriers: list[dict],
    sim: dict,
    dispatch: dict,
    log_level: str = "info",
) -> None:
    lines = [
        "[gateway]",
        f'listen = "127.0.0.1:{gateway_port}"',
        'log_format = "json"',
        f'log_level = "{log_level}"',
        "",
        "[database]",
        f"url = {toml_value(db_url)}",
        "",
    ]
    for carrier in carriers:
        lines.append("[[carriers]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in carrier.items()]
        lines.append("")
    lines += ["[[crm_clients]]", 'id = "bench"', 'secret_env = "SMSGW_BENCH_SECRET"', "", "[dispatch]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in dispatch.items()]
    lines += ["", "[simulator]"]
    sim = dict(sim)
    sim_carriers = sim.pop("carriers")
    lines += [f"{k} = {toml_value(v)}" for k, v in sim.items()]
    for carrier in sim_carriers:
        lines.append("")
        lines.append("[[simulator.carriers]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in carrier.items()]
    path.write_text("\n".join(lines) + "\n")


class Proc:
    """A child process (`smsgw <command> --config <file>`), output to a log file."""

    def __init__(self, command: str, config: Path, log: Path, profile: Path | None = None):
        self.log = log
        env = {**os.environ, **ENV, "PYTHONUNBUFFERED": "1"}
        prefix = ["-m", "cProfile", "-o", str(profile)] if profile else []
        self.popen = subprocess.Popen(
            [sys.executable, *prefix, "-m", "gateway.cli.main", command, "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM, wait; returns the seconds the process took to exit."""
        started = time.monotonic()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return time.monotonic() - started


def wait_http(url: str, timeout: float = 30.0, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == status:
                    return
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready")


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def send_json(url: str, body: dict, method: str = "PATCH"):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def queue_messages(
    db_url: str,
    count: int,
    *,
    text: str | None = None,
    validity_hours: float = 2.0,
    first_number: int = 5510000000,
) -> datetime:
    """Insert ``count`` queued messages (one transaction); returns the commit time (naive UTC).

    ``text`` may hold ``{i}`` (the message's number) so that no two bodies are the same."""
    from gateway.store.db import Database
    from gateway.store.outbox import enqueue
    from textcodec.encoding import encode_text

    db = Database(db_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for i in range(count):
        body = (
            text.format(i=i)
            if text
            else (
                f"Su reporte MH-2026-{i:06d} (Fuga de agua) fue recibido el 29/11. "
                f"Consulte su estado: responda ESTADO MH-2026-{i:06d}"
            )
        )
        encoded = encode_text(body)
        rows.append(
            {
                "msisdn": f"+52{first_number + i}",
                "language": "es",
                "body": encoded.text,
                "encoding": encoded.encoding,
                "segments": encoded.segments,
                "priority": 2,
                "expires_at": now + timedelta(hours=validity_hours),
            }
        )
    with db.engine.begin() as conn:
        for i in range(0, count, 5000):
            enqueue(conn, rows[i : i + 5000], now)
    committed = datetime.now(UTC).replace(tzinfo=None)
    db.close()
    return committed


def median_report(runs: list[dict], keys: list[str]) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in keys}
