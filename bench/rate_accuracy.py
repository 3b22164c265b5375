"""Speed-limit accuracy, throttling and recovery of the SMPP client, with the database in the loop.

The simulator runs in its own process (`smsgw simulator`); the gateway (Gateway on SQLite)
runs in this one, instrumented to time every throttled part until the SMSC accepts it. Phases:

A. accuracy: the carrier is configured at 100 segments/s (2 binds sharing the limit) and the
   simulator's limit is also 100/s; with a backlog, the rate the SMSC accepts over 60 s must be
   97-100/s with zero ESME_RTHROTTLED;
B. settling: the simulator's limit drops to 50/s (the client still configured at 100): after
   20 s to settle, the accepted rate over the next 40 s must be within 10 % of 50/s;
C. storm and recovery: back at 100/s, then 5 s of a 10/s limit (a throttling storm), then 100/s
   again: how long until the accepted rate is back at 95/s, and how long each throttled part waited
   before going out again (Kannel waits its 60 s resend period);

and at the end nothing is lost: every message delivered, the SMSC got each one once.

    python bench/rate_accuracy.py                 # 3 runs, medians at the end
    python bench/rate_accuracy.py --runs 1 --accuracy-seconds 20 --settle-seconds 10 --measure-seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import ENV, Proc, free_port, get_json, queue_messages, send_json, wait_http, write_config


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_once(args, run: int, tmp: Path) -> dict:
    import os

    os.environ.update(ENV)
    from config.settings import load_settings
    from gateway.logging import configure_logging
    from gateway.roles import build
    from gateway.store.migrate import upgrade

    configure_logging("json", "warning")
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    smpp_port, sim_http, gw_port = free_port(), free_port(), free_port()
    config = tmp / "bench.toml"
    write_config(
        config,
        gateway_port=gw_port,
        db_url=db_url,
        log_level="warning",
        carriers=[
            {
                "name": "limited",
                "host": "127.0.0.1",
                "port": smpp_port,
                "system_id": "smsgw",
                "password_env": "SMSGW_BENCH_PASSWORD",
                "tps": 100,
                "window": 10,
                "binds": 2,
                "throttle_pause_seconds": 1.0,
            }
        ],
        dispatch={"batch_size": 500, "interval_seconds": 0.2, "lease_seconds": 600},
        sim={
            "http_listen": f"127.0.0.1:{sim_http}",
            "carriers": [
                {"name": "limited", "port": smpp_port, "tps": 100, "receipt_delay": 0.2, "window": 1000}
            ],
        },
    )
    upgrade(db_url)
    sim = Proc("simulator", config, tmp / "simulator.log")
    sim_url = f"http://127.0.0.1:{sim_http}"
    runtime = None
    try:
        wait_http(f"{sim_url}/sim/stats")
        runtime = build(load_settings(config))
        await runtime.start()
        assert await runtime.pool.wait_bound(10)
        carrier = runtime.pool.carriers["limited"]

        # instrument: each throttled part's wait until it is accepted
        first_throttle: dict = {}
        resend_delays: list[float] = []
        accepted_at: list[float] = []
        original = carrier.sending._answered

        def answered(entry, status, message_id):
            now = time.monotonic()
            key = (entry.job, entry.index)
            if status == 0:
                accepted_at.append(now)
            if status in (0x58, 0x14):
                first_throttle.setdefault(key, now)
            elif status == 0 and key in first_throttle:
                resend_delays.append(now - first_throttle.pop(key))
            original(entry, status, message_id)

        carrier.sending._answered = answered

        def sim_stats() -> dict:
            return get_json(f"{sim_url}/sim/stats")["carriers"]["limited"]

        async def stats() -> dict:
            return await asyncio.to_thread(sim_stats)

        async def set_sim_tps(tps: float | None) -> None:
            await asyncio.to_thread(
                send_json, f"{sim_url}/sim/carriers/limited/settings", {"tps": tps}, "PATCH"
            )

        total = 0

        async def backlog(count: int, first: int) -> None:
            nonlocal total
            await asyncio.to_thread(queue_messages, db_url, count, first_number=first, validity_hours=2)
            total += count
            runtime.signals.outbox.set()

        # A: accuracy at the SMSC's own limit
        need_a = int(100 * (args.warmup_seconds + args.accuracy_seconds) + 600)
        await backlog(need_a, 5510000000)
        await asyncio.sleep(args.warmup_seconds)
        s0, t0 = await stats(), time.monotonic()
        await asyncio.sleep(args.accuracy_seconds)
        s1, t1 = await stats(), time.monotonic()
        # exact: submit_sm_resp ESME_ROK received in [t0, t0 + accuracy_seconds)
        end = t0 + args.accuracy_seconds
        accuracy_rate = sum(1 for t in accepted_at if t0 <= t < end) / args.accuracy_seconds
        smsc_rate = (s1["submitted"] - s0["submitted"]) / (t1 - t0)  # cross-check, HTTP jitter included
        accuracy_throttled = s1["throttled"]

        # B: the SMSC's limit below the configured one
        need_b = int(50 * (args.settle_seconds + args.measure_seconds) + 600)
        await backlog(need_b, 5520000000)
        await set_sim_tps(50)
        await asyncio.sleep(args.settle_seconds)
        s2, t2 = await stats(), time.monotonic()
        await asyncio.sleep(args.measure_seconds)
        s3, t3 = await stats(), time.monotonic()
        settle_rate = (s3["submitted"] - s2["submitted"]) / (t3 - t2)
        settle_throttled = s3["throttled"] - s2["throttled"]
        client_rate_b = carrier.throttle.rate(time.monotonic())

        # C: storm and recovery
        await backlog(3000, 5530000000)
        await set_sim_tps(100)
        await asyncio.sleep(8)
        await set_sim_tps(10)
        resend_delays.clear()
        first_throttle.clear()
        await asyncio.sleep(5)
        await set_sim_tps(100)
        restored = time.monotonic()
        recovered_after = None
        samples: list[tuple[float, int]] = []
        while time.monotonic() - restored < 60:
            samples.append((time.monotonic(), carrier.parts_accepted))
            # rate over the last second
            window = [s for s in samples if s[0] >= samples[-1][0] - 1.0]
            if len(window) >= 2 and window[-1][0] - window[0][0] >= 0.95:
                rate = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
                if rate >= 95:
                    recovered_after = samples[-1][0] - restored
                    break
            await asyncio.sleep(0.05)

        # the end: everything delivered, nothing twice
        from sqlalchemy import func, select

        from gateway.store.models import messages

        def delivered(conn) -> int:
            query = select(func.count()).select_from(messages).where(messages.c.status == "delivered")
            return conn.execute(query).scalar_one()

        async def all_delivered() -> int:
            while (done := await runtime.db.run(delivered)) < total:
                await runtime.writer.next_commit()
            return done

        done = await asyncio.wait_for(all_delivered(), 300)
        final = await stats()
        result = {
            "run": run,
            "accuracy_rate": round(accuracy_rate, 2),
            "accuracy_rate_smsc_view": round(smsc_rate, 2),
            "accuracy_throttled": accuracy_throttled,
            "settle_rate": round(settle_rate, 2),
            "settle_ratio": round(settle_rate / 50, 3),
            "settle_throttled": settle_throttled,
            "client_rate_limit_in_b": round(client_rate_b, 1),
            "recovery_seconds": round(recovered_after, 2) if recovered_after is not None else None,
            "throttled_parts_in_storm": len(resend_delays) + len(first_throttle),
            "resend_wait_median_s": round(statistics.median(resend_delays), 2) if resend_delays else None,
            "resend_wait_p99_s": round(_percentile(resend_delays, 0.99), 2) if resend_delays else None,
            "resend_wait_max_s": round(max(resend_delays), 2) if resend_delays else None,
            "messages": total,
            "delivered": done,
            "smsc_stored": final["submitted"],
        }
        result["valid"] = (
            done == total
            and final["submitted"] == total
            and 97 <= accuracy_rate <= 100.5
            and accuracy_throttled == 0
            and 0.9 <= result["settle_ratio"] <= 1.1
        )
        return result
    finally:
        if runtime is not None:
            await runtime.stop()
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup-seconds", type=float, default=5)
    parser.add_argument("--accuracy-seconds", type=float, default=60)
    parser.add_argument("--settle-seconds", type=float, default=20)
    parser.add_argument("--measure-seconds", type=float, default=40)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        factory = None
    runs = []
    for run in range(1, args.runs + 1):
        tmp = Path(tempfile.mkdtemp(prefix="smsgw-rate-"))
        with asyncio.Runner(loop_factory=factory) as runner:
            result = runner.run(run_once(args, run, tmp))
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp)
        print(json.dumps(result), flush=True)
        runs.append(result)
    keys = ["accuracy_rate", "accuracy_throttled", "settle_rate", "recovery_seconds", "resend_wait_max_s"]
    medians = {k: statistics.median(r[k] for r in runs if r[k] is not None) for k in keys}
    print(
        f"median of {len(runs)} runs: accepted {medians['accuracy_rate']:.2f}/s at a 100/s limit "
        f"({medians['accuracy_throttled']:.0f} ESME_RTHROTTLED); {medians['settle_rate']:.2f}/s under an "
        f"SMSC limit of 50/s; back to 95/s {medians['recovery_seconds']:.1f} s after a throttling storm, "
        f"throttled parts resent within {medians['resend_wait_max_s']:.1f} s; "
        f"all valid: {all(r['valid'] for r in runs)}"
    )


if __name__ == "__main__":
    main()
