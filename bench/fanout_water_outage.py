"""Fan-out: a water.outage to 100,000 subscribers in 10 zones, fully queued; the gateway's RSS.

Prepares a fresh SQLite database (migrated, the zone catalogue synced) with ``--subscribers``
citizens subscribed to AGUA in 10 colonias (10 % of them in a second of those colonias too, so the
one-copy-per-number rule is exercised, plus 1,000 opted-out subscribers who must get nothing),
starts ``smsgw serve`` in a separate process (no carriers: the messages stay queued), posts one
signed water.outage naming the 10 colonias and polls ``GET /api/v1/broadcasts/{id}`` until the
fan-out is done. Time = from sending the POST to the poll that first sees the broadcast ``done`` (its
last chunk committed; an upper bound by up to one 20 ms poll); the peak RSS is the gateway
process's VmHWM.

    python bench/fanout_water_outage.py                  # 3 runs, 100,000 subscribers; medians
    python bench/fanout_water_outage.py --runs 1 --subscribers 20000
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import free_port, peak_rss_mb  # noqa: E402
from gateway.http.signing import Signer  # noqa: E402

SECRET = "bench-secret"
SIGNER = Signer("bench", SECRET)
ZONES = [
    "Polanco I Sección", "Polanco II Sección", "Polanco III Sección", "Anzures", "Anáhuac I Sección",
    "Tacubaya", "Escandón I Sección", "Argentina Antigua", "Popotla", "Tacuba",
]  # fmt: skip


def prepare_database(db_url: str, subscribers: int) -> None:
    from sqlalchemy import insert, text

    from gateway.domain.zones import load_zones
    from gateway.store.db import Database
    from gateway.store.migrate import upgrade
    from gateway.store.models import citizens, subscriptions
    from gateway.store.zones import ids_of, sync_zones

    upgrade(db_url)
    db = Database(db_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    directory = load_zones()
    db.transaction(sync_zones, directory, now)
    zone_ids = db.transaction(ids_of, [directory.match(z, partial=False)[0] for z in ZONES])
    total = subscribers + 1000
    with db.engine.begin() as conn:
        conn.execute(
            insert(citizens),
            [
                {
                    "id": n + 1,
                    "msisdn": f"+5255{30000000 + n:08d}",
                    "language": "en" if n % 20 == 0 else "es",
                    "opted_out": n >= subscribers,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(total)
            ],
        )
        rows = [
            {"citizen_id": n + 1, "topic": "AGUA", "zone_id": zone_ids[n % 10], "created_at": now}
            for n in range(total)
        ]
        rows += [
            {"citizen_id": n + 1, "topic": "AGUA", "zone_id": zone_ids[(n + 3) % 10], "created_at": now}
            for n in range(0, total, 10)
        ]
        conn.execute(insert(subscriptions), rows)
        if db.is_sqlite:
            conn.execute(text("ANALYZE"))
    db.close()


def request(port: int, method: str, path: str, payload: dict | None = None) -> tuple[int, dict]:
    body = json.dumps(payload).encode() if payload is not None else b""
    headers = {"Content-Type": "application/json", **SIGNER.headers(method, path, body)}
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body if method == "POST" else None,
        headers=headers,
        method=method,
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def one_run(subscribers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="smsgw-fanout-") as tmp:
        workdir = Path(tmp)
        db_url = f"sqlite:///{workdir / 'fanout.db'}"
        t = time.perf_counter()
        prepare_database(db_url, subscribers)
        prepared_in = time.perf_counter() - t
        port = free_port()
        config = workdir / "smsgw.toml"
        config.write_text(
            f'[gateway]\nlisten = "127.0.0.1:{port}"\nlog_format = "json"\n\n[database]\nurl = "{db_url}"\n\n'
            '[[crm_clients]]\nid = "bench"\nsecret_env = "SMSGW_BENCH_SECRET"\n\n'
            "[quiet_hours]\nenabled = false\n",
            encoding="utf-8",
        )
        env = {**os.environ, "SMSGW_BENCH_SECRET": SECRET}
        log = (workdir / "gateway.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config)],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the gateway did not start: {workdir / 'gateway.log'}") from None
                    time.sleep(0.1)
            rss_before = peak_rss_mb(proc.pid)
            event = {
                "id": "bench-agua-1",
                "type": "water.outage",
                "area": {"zones": ZONES},
                "notice": {"starts_at": "2030-12-01T08:00:00-06:00", "ends_at": "2030-12-01T18:00:00-06:00"},
            }
            sent = time.time()
            status, body = request(port, "POST", "/api/v1/events", event)
            answered = time.time()
            assert status == 202, body
            while True:
                _, view = request(port, "GET", f"/api/v1/broadcasts/{body['broadcast_id']}")
                seen = time.time()  # when the client saw it done (polling every 20 ms: an upper bound)
                if view["status"] != "pending" and view["status"] != "running":
                    break
                time.sleep(0.02)
            assert body["recipients"] == view["queued"] == subscribers == view["messages"].get("queued"), view
            return {
                "seconds": seen - sent,
                "answer_ms": (answered - sent) * 1000,
                "recipients": body["recipients"],
                "queued": view["queued"],
                "messages": view["messages"],
                "peak_rss_mb": peak_rss_mb(proc.pid),
                "rss_before_mb": rss_before,
                "prepared_s": prepared_in,
            }
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        r = one_run(args.subscribers)
        results.append(r)
        print(
            f"run {run + 1}: {r['queued']:,} messages queued in {r['seconds']:.2f} s (202 after "
            f"{r['answer_ms']:.0f} ms, {r['recipients']:,} recipients counted; by status {r['messages']}); "
            f"gateway peak RSS {r['peak_rss_mb']:.0f} MB (before the POST {r['rss_before_mb']:.0f} MB)",
            flush=True,
        )
    print(
        f"median of {len(results)}: fully queued in "
        f"{statistics.median(r['seconds'] for r in results):.2f} s, "
        f"peak RSS {statistics.median(r['peak_rss_mb'] for r in results):.0f} MB "
        "(target: 100,000 subscribers in 10 zones within 5 s, RSS < 250 MB)"
    )


if __name__ == "__main__":
    main()
