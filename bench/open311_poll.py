"""Open311 polling: one cycle over 10,000 tracked requests of which 1,000 changed.

A GeoReport v2 server on loopback (tests/crm_adapters/georeport.py, the one the tests use) runs in
a process of its own and holds 10,000 open requests created a day ago. Setup (not timed): a fresh
database migrated, the adapter's first cycle announces all 10,000 (one ``case.received`` each).
Each run then changes the notes of 1,000 random requests and times one ``poll_once()``: the
creation scan of the last minutes (empty), the re-fetch of the 10,000 tracked requests by id
(``service_request_id=a,b,c``, ``id_batch`` per query, ``concurrency`` queries at a time), the
diff, 1,000 ``case.status_changed`` events through the intake service (group commit; their texts
rendered and queued) and their copies saved. Each run checks that exactly 1,000 events were
accepted, and prints the poller process's CPU time for the cycle beside the wall time.

    python bench/open311_poll.py                       # 10,000 tracked, 1,000 changed, 5 runs, median
    python bench/open311_poll.py --db postgresql://postgres@127.0.0.1:5432/bench_open311   # an empty db
    python bench/open311_poll.py --id-batch 100 --concurrency 8 --format xml
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from bench._common import free_port  # noqa: E402
from config.crm_adapters import Open311AdapterSettings  # noqa: E402
from crm_adapters.open311.poller import Open311Poller  # noqa: E402
from gateway import clock  # noqa: E402
from gateway.domain.composer import Composer  # noqa: E402
from gateway.domain.notices import NoticePolicy  # noqa: E402
from gateway.domain.templates import TemplateRenderer  # noqa: E402
from gateway.logging import configure_logging  # noqa: E402
from gateway.services.intake import IntakeService  # noqa: E402
from gateway.store.db import Database  # noqa: E402
from gateway.store.intake import IntakeBatcher  # noqa: E402
from gateway.store.migrate import upgrade  # noqa: E402
from tests.crm_adapters.georeport import GeoReportServer  # noqa: E402

CITY = ZoneInfo("America/Mexico_City")


# --- the CRM's process -------------------------------------------------------------------------------


async def serve(control_port: int, tracked: int) -> None:
    """The GeoReport server, and a control API the benchmark changes requests through."""
    server = GeoReportServer(now=lambda: datetime.now(UTC))
    await server.start()
    created = datetime.now(UTC) - timedelta(days=1)
    for i in range(tracked):
        server.add(
            f"{100000 + i}",
            created + timedelta(seconds=i),
            phone=f"55{20000000 + i:08d}",
            service_name="Bache",
        )

    async def change(request: web.Request) -> web.Response:
        data = await request.json()
        at = datetime.now(UTC)
        for rid in data["ids"]:
            server.change(rid, at, status_notes=data["notes"])
        server.queries.clear()
        return web.json_response({"url": server.url})

    async def queries(request: web.Request) -> web.Response:
        return web.json_response({"url": server.url, "queries": len(server.queries)})

    control = web.Application()
    control.router.add_post("/change", change)
    control.router.add_get("/queries", queries)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", control_port).start()
    print(json.dumps({"url": server.url}), flush=True)
    await asyncio.Event().wait()


# --- the poller's process ----------------------------------------------------------------------------


async def run(args: argparse.Namespace, url: str, control: str, crm_url: str) -> list[tuple[float, float]]:
    db = Database(url)
    policy = NoticePolicy(Composer(TemplateRenderer(CITY, "30311")))
    intake = IntakeService(db, policy, IntakeBatcher(db, policy, clock.utcnow))
    settings = Open311AdapterSettings.model_validate(
        {
            "kind": "open311",
            "client": "cesac",
            "url": crm_url,
            "format": args.format,
            "updates": "refetch",
            "backfill_hours": 48,
            "id_batch": args.id_batch,
            "concurrency": args.concurrency,
        }
    )
    poller = Open311Poller(settings, db, intake, city_tz=CITY, owner="bench")
    ids = [f"{100000 + i}" for i in range(args.tracked)]
    try:
        async with aiohttp.ClientSession() as http:
            started = time.perf_counter()
            report = await poller.poll_once()
            assert report.ok and report.accepted == args.tracked, report
            print(
                f"setup: {args.tracked:,} requests announced in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            out = []
            rng = random.Random(7)
            for n in range(1, args.runs + 1):
                await asyncio.sleep(1.1)  # the changes get a later updated_datetime (whole seconds)
                changes = {"ids": rng.sample(ids, args.changed), "notes": f"Revisión {n}: cuadrilla asignada"}
                async with http.post(f"{control}/change", json=changes) as response:
                    assert response.status == 200
                cpu, started = time.process_time(), time.perf_counter()
                report = await poller.poll_once()
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                assert report.ok, report.error
                assert report.accepted == args.changed and report.changed == args.changed, report
                async with http.get(f"{control}/queries") as response:
                    queries = (await response.json())["queries"]
                out.append((seconds, cpu))
                print(
                    f"run {n}: {seconds:.3f} s per cycle, CPU {cpu:.3f} s ({queries} queries, "
                    f"{report.records:,} requests read, {report.accepted:,} events accepted)",
                    flush=True,
                )
        return out
    finally:
        await poller.close()
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracked", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--id-batch", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--format", choices=["json", "xml"], default="json")
    parser.add_argument("--db", help="an empty database's URL (default: a fresh SQLite file)")
    parser.add_argument("--serve", type=int, metavar="CONTROL_PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging("json", "warning")
    import uvloop

    if args.serve:
        uvloop.run(serve(args.serve, args.tracked))
        return
    control_port = free_port()
    crm = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(control_port), "--tracked", str(args.tracked)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        crm_url = json.loads(crm.stdout.readline())["url"]
        with tempfile.TemporaryDirectory() as tmp:
            url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            results = uvloop.run(run(args, url, f"http://127.0.0.1:{control_port}", crm_url))
    finally:
        crm.terminate()
        crm.wait(10)
    times = [s for s, _ in results]
    cpus = [c for _, c in results]
    print(
        f"median {statistics.median(times):.3f} s per poll cycle, CPU {statistics.median(cpus):.3f} s "
        f"({args.tracked:,} tracked, {args.changed:,} changed; runs: "
        + " / ".join(f"{t:.3f}" for t in times)
        + ")"
    )


if __name__ == "__main__":
    main()
