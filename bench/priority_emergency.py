"""Priority: with 100,000 normal messages queued, how soon an emergency's first submit_sm leaves.

Prepares a fresh SQLite database with ``--backlog`` normal-priority messages queued (as 100,000
case notices would be) and one EMERGENCIA subscriber; starts the SMSC simulator (``smsgw
simulator``, two carriers, no speed limit, receipts after 0.2 s) and ``smsgw serve`` (bound to both
carriers at their configured 100 segments/s and window 10 each, the defaults) in separate
processes; lets the backlog drain for ``--drain`` seconds, so the links are busy with it; then posts
a signed emergency.alert and takes the time from its 202 (received by this client) to the moment
the simulator received the emergency's submit_sm (the simulator's ``submitted_at``, same clock).
Repeated ``--alerts`` times per run, a second apart.

    python bench/priority_emergency.py                   # 3 runs, 100,000 queued, 5 alerts each
    python bench/priority_emergency.py --runs 1 --alerts 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import free_port  # noqa: E402
from gateway.http.signing import Signer  # noqa: E402

SECRET = "bench-secret"
SIGNER = Signer("bench", SECRET)
EMERGENCY_NUMBER = "+525599999999"


def prepare_database(db_url: str, backlog: int) -> None:
    from sqlalchemy import insert, text

    from gateway.domain.zones import load_zones
    from gateway.store.db import Database
    from gateway.store.migrate import upgrade
    from gateway.store.models import citizens, events, messages, subscriptions
    from gateway.store.zones import sync_zones

    upgrade(db_url)
    db = Database(db_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    db.transaction(sync_zones, load_zones(), now)
    with db.engine.begin() as conn:
        event_id = conn.execute(
            insert(events)
            .values(client_id="bench", event_key="backlog", type="case.received", payload={}, received_at=now)
            .returning(events.c.id)
        ).scalar_one()
        body = (
            "Recibimos su reporte de Fuga de agua el 29/11/2026 con folio MH-2026-004512. "
            "Para saber su estado envie ESTADO MH-2026-004512 al 30311."
        )
        conn.execute(
            insert(messages),
            [
                {
                    "event_id": event_id,
                    "msisdn": f"+5255{40000000 + n:08d}",
                    "language": "es",
                    "body": body,
                    "encoding": "gsm7",
                    "segments": 1,
                    "priority": 2,
                    "status": "queued",
                    "not_before": now,
                    "expires_at": now + timedelta(hours=24),
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(backlog)
            ],
        )
        citizen = conn.execute(
            insert(citizens)
            .values(msisdn=EMERGENCY_NUMBER, language="es", created_at=now, updated_at=now)
            .returning(citizens.c.id)
        ).scalar_one()
        conn.execute(
            insert(subscriptions).values(citizen_id=citizen, topic="EMERGENCIA", zone_id=None, created_at=now)
        )
        conn.execute(text("ANALYZE"))
    db.close()


def write_config(
    path: Path, gateway_port: int, http_port: int, smpp: dict[str, int], db_url: str, even: bool = True
) -> None:
    lines = [
        f'[gateway]\nlisten = "127.0.0.1:{gateway_port}"\nlog_format = "json"\n',
        f'[database]\nurl = "{db_url}"\n',
    ]
    for name, port in smpp.items():
        lines.append(
            f'[[carriers]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {port}\nsystem_id = "smsgw"\n'
            'password_env = "SMSGW_BENCH_PASSWORD"\ntps = 100\nwindow = 10\n'
        )
    lines.append('[[crm_clients]]\nid = "bench"\nsecret_env = "SMSGW_BENCH_SECRET"\n')
    lines.append("[quiet_hours]\nenabled = false\n")
    if even:
        # traffic split evenly over the two carriers; without it every number goes to the first
        # (the default "order" rule) while the dispatcher counts the room of both (see BENCHMARKS.md)
        lines.append("[routing]\nweights = { telcel = 1.0, movistar = 1.0 }\n")
    lines.append(f'[simulator]\nhttp_listen = "127.0.0.1:{http_port}"\n')
    for name, port in smpp.items():
        lines.append(
            f'[[simulator.carriers]]\nname = "{name}"\nport = {port}\n'
            'system_id = "smsgw"\npassword = "smsgw"\n'
            "receipt_delay = 0.2\n"
        )
    path.write_text("\n".join(lines), encoding="utf-8")


def call(url: str, payload: dict | None = None, method: str = "GET") -> tuple[int, dict]:
    body = json.dumps(payload).encode() if payload is not None else b""
    headers = {"Content-Type": "application/json", **SIGNER.headers(method, url, body)}
    req = urllib.request.Request(url, data=body if method == "POST" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def sim_get(url: str):
    """The simulator's control API is not the gateway's: it takes no signature."""
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def wait_for(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def one_run(args, run: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="smsgw-priority-") as tmp:
        workdir = Path(tmp)
        db_url = f"sqlite:///{workdir / 'priority.db'}"
        prepare_database(db_url, args.backlog)
        gw_port, http_port = free_port(), free_port()
        smpp = {"telcel": free_port(), "movistar": free_port()}
        config = workdir / "smsgw.toml"
        write_config(config, gw_port, http_port, smpp, db_url, args.routing == "even")
        env = {**os.environ, "SMSGW_BENCH_SECRET": SECRET, "SMSGW_BENCH_PASSWORD": "smsgw"}
        cli = [sys.executable, "-m", "gateway.cli.main"]
        sim_log, gw_log = (workdir / "sim.log").open("wb"), (workdir / "gateway.log").open("wb")
        sim = subprocess.Popen(
            [*cli, "simulator", "--config", str(config)], env=env, stdout=sim_log, stderr=sim_log
        )
        gw = None
        try:
            wait_for(f"http://127.0.0.1:{http_port}/sim/stats")
            gw = subprocess.Popen(
                [*cli, "serve", "--config", str(config)], env=env, stdout=gw_log, stderr=gw_log
            )
            wait_for(f"http://127.0.0.1:{gw_port}/readyz")
            time.sleep(args.drain)
            base = f"http://127.0.0.1:{gw_port}"
            latencies = []
            for n in range(args.alerts):
                event = {
                    "id": f"sismo-{run}-{n}",
                    "type": "emergency.alert",
                    "notice": {"text": f"Simulacro {n}"},
                }
                status, body = call(f"{base}/api/v1/events", event, "POST")
                answered = time.time()
                assert status == 202 and body["recipients"] == 1, body
                deadline = time.monotonic() + 10
                while True:
                    found = sim_get(
                        f"http://127.0.0.1:{http_port}/sim/messages?to={EMERGENCY_NUMBER[1:]}&limit=100"
                    )
                    items = (
                        found if isinstance(found, list) else found.get("messages", found.get("items", []))
                    )
                    mine = [m for m in items if m["text"] == f"EMERGENCIA: Simulacro {n}"]
                    if mine:
                        submitted = datetime.fromisoformat(
                            mine[0]["submitted_at"].replace("Z", "+00:00")
                        ).timestamp()
                        latencies.append((submitted - answered) * 1000)
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit("the emergency never reached the simulator")
                    time.sleep(0.005)
                time.sleep(1)
            _, stats = call(f"{base}/api/v1/stats")
            return {"latencies_ms": latencies, "queued_left": stats["queue"]["depth"]}
        finally:
            for proc in (gw, sim):
                if proc is not None:
                    proc.terminate()
                    proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--alerts", type=int, default=5)
    parser.add_argument("--drain", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--routing", choices=["even", "default"], default="even", help="even: weights 1:1; default: none"
    )
    args = parser.parse_args()
    medians, worst = [], []
    for run in range(args.runs):
        r = one_run(args, run)
        lat = r["latencies_ms"]
        medians.append(statistics.median(lat))
        worst.append(max(lat))
        print(
            f"run {run + 1}: 202 -> first submit_sm at the SMSC: {', '.join(f'{x:.0f}' for x in lat)} ms "
            f"(median {statistics.median(lat):.0f}, max {max(lat):.0f}); "
            f"{r['queued_left']:,} normal messages "
            "still queued behind",
            flush=True,
        )
    print(
        f"median of {args.runs} runs: {statistics.median(medians):.0f} ms (the runs' worst: "
        f"{', '.join(f'{w:.0f}' for w in worst)} ms; target < 500 ms with {args.backlog:,} queued)"
    )


if __name__ == "__main__":
    main()
