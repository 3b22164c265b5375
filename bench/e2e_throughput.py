"""A lower bound: the link and the status writer alone, from bare outbox rows to their receipts.

It skips stages a real request passes through: the messages are inserted straight into the outbox
(no citizen, no broadcast, no signed request, no fan-out), so the claim's opt-out check and the
broadcast's bookkeeping never run. The figure a city sees is bench/broadcast_delivery.py's.

queued in the outbox (SQLite) -> claimed -> submit_sm -> submit_sm_resp recorded -> receipt recorded,
against the bundled simulator on loopback. Three processes: this one (queues the messages, watches
the database), the simulator (`smsgw simulator`) and the gateway (`smsgw serve`), so the gateway's
CPU and memory are its own:

- msgs/s: messages / (last receipt recorded - messages committed to the outbox);
- CPU µs per message: the gateway's user+system CPU (all its threads) over the run / messages;
- peak RSS: the gateway's VmHWM.

A run is valid only when every message ends ``delivered``, each with one part, and the simulator
received exactly one submit_sm per message.

    python bench/e2e_throughput.py                    # 3 runs of 100,000, medians at the end
    python bench/e2e_throughput.py --messages 20000 --runs 1 --binds 2 --window 250
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import (
    Proc,
    cpu_seconds,
    free_port,
    get_json,
    peak_rss_mb,
    queue_messages,
    wait_http,
    write_config,
)

# 3 GSM-7 segments (UDH), different for each message
LONG_TEXT = (
    "Aviso MH-2026-{i:06d}: corte de agua programado en su colonia el sabado de 8:00 a 18:00 h por "
    "trabajos de mantenimiento en la red. Almacene agua y evite desperdicios. Si tiene dudas, "
    "llame a Locatel *0311 o responda AYUDA. Para dejar de recibir avisos responda BAJA AGUA. "
    "Gracias por su comprension; la Alcaldia trabaja para mejorar el servicio en su colonia."
)


def run_once(args, run: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="smsgw-e2e-"))
    db_path = tmp / "bench.db"
    db_url = f"sqlite:///{db_path}"
    smpp_port, sim_http, gw_port = free_port(), free_port(), free_port()
    config = tmp / "bench.toml"
    write_config(
        config,
        gateway_port=gw_port,
        db_url=db_url,
        log_level=args.log_level,
        carriers=[
            {
                "name": "bench",
                "host": "127.0.0.1",
                "port": smpp_port,
                "system_id": "smsgw",
                "password_env": "SMSGW_BENCH_PASSWORD",
                "tps": args.tps,
                "window": args.window,
                "binds": args.binds,
                "response_timeout_seconds": 30,
            }
        ],
        dispatch={"batch_size": args.batch, "interval_seconds": 0.2, "lease_seconds": 300},
        sim={
            "http_listen": f"127.0.0.1:{sim_http}",
            "store_size": max(10, args.messages),
            "carriers": [
                {
                    "name": "bench",
                    "port": smpp_port,
                    "receipt_delay": args.receipt_delay,
                    "max_binds": 64,
                    "window": 100_000,
                    "deliver_window": args.deliver_window,
                }
            ],
        },
    )
    from gateway.store.migrate import upgrade

    upgrade(db_url)
    sim = Proc("simulator", config, tmp / "simulator.log")
    gateway = None
    try:
        wait_http(f"http://127.0.0.1:{sim_http}/sim/stats")
        gateway = Proc("serve", config, tmp / "gateway.log", profile=args.profile)
        wait_http(f"http://127.0.0.1:{gw_port}/readyz", timeout=60)
        time.sleep(0.5)
        cpu0, sim_cpu0 = cpu_seconds(gateway.pid), cpu_seconds(sim.pid)
        committed = queue_messages(
            db_url, args.messages, validity_hours=2, text=LONG_TEXT if args.long else None
        )
        t_commit = time.monotonic()
        watch = sqlite3.connect(db_path, timeout=30)
        done = 0
        while True:
            time.sleep(0.5)
            done = watch.execute("SELECT COUNT(*) FROM messages WHERE status = 'delivered'").fetchone()[0]
            if done >= args.messages:
                break
            if time.monotonic() - t_commit > args.timeout:
                raise TimeoutError(f"only {done} of {args.messages} delivered after {args.timeout} s")
        cpu1, sim_cpu1 = cpu_seconds(gateway.pid), cpu_seconds(sim.pid)
        rss = peak_rss_mb(gateway.pid)
        last = watch.execute("SELECT MAX(done_at) FROM messages").fetchone()[0]
        statuses = dict(watch.execute("SELECT status, COUNT(*) FROM messages GROUP BY status").fetchall())
        parts = watch.execute("SELECT COUNT(*) FROM message_parts").fetchone()[0]
        watch.close()
        elapsed = (datetime.fromisoformat(last) - committed).total_seconds()
        sim_stats = get_json(f"http://127.0.0.1:{sim_http}/sim/stats")["carriers"]["bench"]
        stop_seconds = gateway.stop()
        gateway = None
        result = {
            "run": run,
            "messages": args.messages,
            "seconds": round(elapsed, 3),
            "msgs_per_s": round(args.messages / elapsed),
            "cpu_us_per_msg": round((cpu1 - cpu0) / args.messages * 1e6, 1),
            "gateway_cpu_s": round(cpu1 - cpu0, 2),
            "simulator_cpu_s": round(sim_cpu1 - sim_cpu0, 2),
            "peak_rss_mb": round(rss, 1),
            "statuses": statuses,
            "parts": parts,
            "sim_submitted": sim_stats["submitted"],
            "sim_receipts_acked": sim_stats["receipts_acked"],
            "sim_throttled": sim_stats["throttled"],
            "shutdown_seconds": round(stop_seconds, 2),
        }
        per_message = 3 if args.long else 1
        result["valid"] = (
            statuses == {"delivered": args.messages}
            and parts == args.messages * per_message
            and sim_stats["submitted"] == args.messages * per_message
        )
        return result
    finally:
        if gateway is not None:
            gateway.stop()
        sim.stop()
        if not args.keep:
            for f in sorted(tmp.iterdir()):
                f.unlink()
            tmp.rmdir()
        else:
            print(f"kept {tmp}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--binds", type=int, default=2)
    parser.add_argument("--window", type=int, default=250)
    parser.add_argument("--tps", type=float, default=100_000)
    parser.add_argument("--batch", type=int, default=2000, help="dispatch.batch_size")
    parser.add_argument("--receipt-delay", type=float, default=0.0)
    parser.add_argument("--deliver-window", type=int, default=1000)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--long", action="store_true", help="3-segment messages (UDH concatenation)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    parser.add_argument("--profile", type=Path, help="run the gateway under cProfile, stats to this file")
    args = parser.parse_args()
    runs = []
    for run in range(1, args.runs + 1):
        result = run_once(args, run)
        print(json.dumps(result), flush=True)
        runs.append(result)
    keys = ["msgs_per_s", "cpu_us_per_msg", "peak_rss_mb", "seconds"]
    medians = {k: statistics.median(r[k] for r in runs) for k in keys}
    setup = f"{args.messages:,} messages, {args.binds} binds x window {args.window}"
    print(
        f"median of {len(runs)} runs ({setup}): {medians['msgs_per_s']:,.0f} msgs/s end to end, "
        f"{medians['cpu_us_per_msg']:.0f} µs CPU per message, peak RSS {medians['peak_rss_mb']:.0f} MB; "
        f"all valid: {all(r['valid'] for r in runs)}"
    )


if __name__ == "__main__":
    main()
