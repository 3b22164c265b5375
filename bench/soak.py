"""A soak run: the gateway (`smsgw serve`) against the simulator (`smsgw simulator`), each in its
own process, under steady mixed traffic for 30 minutes, watched for what only time shows.

Traffic, from this process: signed case events (``--events-per-second``, numbers from a pool of
citizens), a citizen's SMS every few seconds through the simulator (ALTA, BAJA, ESTADO, AYUDA and
texts that mean nothing), a water outage broadcast to the subscribers every minute. Every
``--fault-every-seconds`` one of the simulator's faults, drawn at random, is switched on for
``--fault-seconds`` (links dropped, slow answers, submits never answered, binds refused,
ESME_RTHROTTLED or ESME_RMSGQFUL answers), then off again. Every
``--sample-seconds`` the gateway's resident memory, open file descriptors, threads and CPU, its
status writer's backlog and held receipts, the queued messages and /readyz are sampled.

It passes when, at the end, every message is final (nothing queued or submitted after the
settling time), /readyz answered 200 at every sample but those taken while a fault kept the links
down (or within 10 s after it ended), the gateway logged no error, its memory in the last
quarter of the run is within ``--max-rss-growth`` (20 %) of the second quarter's, its descriptors
did not grow by more than 20, it stopped cleanly on SIGTERM, and every message is accounted for
against the simulator's counts: each delivered part was received by the SMSC, and what the SMSC
received more than once is at most what was in flight when a fault struck (a window per fault
switched on).

    python bench/soak.py                                  # 30 minutes
    python bench/soak.py --minutes 3 --events-per-second 10
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from _common import ENV, Proc, cpu_seconds, free_port, wait_http, write_config

from gateway.http.signing import Signer

CITIZENS = 2000
MO_TEXTS = [
    "ALTA AGUA Anzures",
    "alta agua 11590",
    "BAJA AGUA",
    "AYUDA",
    "ESTADO MH-2026-{n:06d}",
    "hola",
    "SI",
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def metric(text: str, name: str) -> float:
    """The sum of a metric's samples (all labels)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def sim_received(sim_http: str) -> int:
    """submit_sm the simulator accepted (stored and answered OK)."""
    with urllib.request.urlopen(f"{sim_http}/sim/stats", timeout=10) as r:
        stats = json.loads(r.read())
    return sum(c["submitted"] for c in stats["carriers"].values())


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class Crm:
    def __init__(self, base: str):
        self.base = base
        self.signer = Signer("bench", ENV["SMSGW_BENCH_SECRET"])
        self.answers: dict[int, int] = {}

    def post(self, event: dict) -> int:
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", **self.signer.headers("POST", "/api/v1/events", body)}
        request = urllib.request.Request(f"{self.base}/api/v1/events", body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                status = r.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        self.answers[status] = self.answers.get(status, 0) + 1
        return status


def send_mo(sim_http: str, number: str, text: str) -> int:
    """202 when the SMSC took the citizen's SMS; 409 when no session of the gateway is bound."""
    body = json.dumps({"from": number, "text": text}).encode()
    request = urllib.request.Request(
        f"{sim_http}/sim/mo", body, {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


FAULTS = [
    {"drop_every_seconds": 3},
    {"drop_after_pdus": 200},
    {"response_delay": [0.5, 1.5]},
    {"never_answer_fraction": 0.05},
    {"refuse_binds_for": 5, "drop_after_pdus": 50},
    {"submit_error_status": 0x58, "submit_error_every": 10},  # ESME_RTHROTTLED
    {"submit_error_status": 0x14, "submit_error_every": 7},  # ESME_RMSGQFUL
]


def faults(sim_http: str, method: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{sim_http}/sim/carriers/soak/faults", data, {"Content-Type": "application/json"}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--events-per-second", type=float, default=20)
    parser.add_argument("--mo-every-seconds", type=float, default=3)
    parser.add_argument("--broadcast-every-seconds", type=float, default=60)
    parser.add_argument("--sample-seconds", type=float, default=15)
    parser.add_argument("--settle-seconds", type=float, default=120)
    parser.add_argument("--max-rss-growth", type=float, default=0.20)
    parser.add_argument("--fault-every-seconds", type=float, default=60)
    parser.add_argument("--fault-seconds", type=float, default=15)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="smsgw-soak-"))
    db_path = tmp / "soak.db"
    db_url = f"sqlite:///{db_path}"
    smpp_port, sim_port, gw_port = free_port(), free_port(), free_port()
    config = tmp / "soak.toml"
    write_config(
        config,
        gateway_port=gw_port,
        db_url=db_url,
        carriers=[
            {
                "name": "soak",
                "host": "127.0.0.1",
                "port": smpp_port,
                "system_id": "smsgw",
                "password_env": "SMSGW_BENCH_PASSWORD",
                "tps": 200,
                "window": 50,
            }
        ],
        dispatch={"interval_seconds": 0.2},
        sim={
            "http_listen": f"127.0.0.1:{sim_port}",
            "store_size": 10_000,
            "carriers": [{"name": "soak", "port": smpp_port, "receipt_delay": 0.2}],
        },
    )
    with config.open("a") as f:  # quiet hours follow the wall clock: off, so nothing is held
        f.write("\n[quiet_hours]\nenabled = false\n")
    from gateway.store.migrate import upgrade

    upgrade(db_url)
    base, sim_http = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{sim_port}"
    sim = Proc("simulator", config, tmp / "simulator.log")
    gateway: Proc | None = None
    failures: list[str] = []
    samples: list[dict] = []
    try:
        wait_http(f"{sim_http}/sim/stats")
        gateway = Proc("serve", config, tmp / "gateway.log")
        wait_http(f"{base}/readyz", timeout=60)
        crm = Crm(base)
        rng = random.Random(7)
        number = [f"+5255{30000000 + i:08d}" for i in range(CITIZENS)]
        ids = itertools.count(1)
        started = time.monotonic()
        end = started + args.minutes * 60
        next_event = next_mo = next_broadcast = next_sample = started
        next_fault, fault_off, switched = started + args.fault_every_seconds, None, Counter()
        last_fault_off, mo_refused = started, 0  # MO the SMSC had no bound session for
        cpu0 = cpu_seconds(gateway.pid)
        print(f"soak: {args.minutes:g} min, logs in {tmp}", flush=True)
        print(f"{'min':>6} {'rss MB':>8} {'fds':>5} {'thr':>4} {'cpu s':>7} {'queued':>7} {'backlog':>7} "
              f"{'held':>5} {'readyz':>6} {'events':>7}", flush=True)  # fmt: skip
        while (now := time.monotonic()) < end:
            if now >= next_event:
                n = next(ids)
                crm.post(
                    {
                        "id": f"soak-{n}",
                        "type": "case.received",
                        "case": {"folio": f"MH-2026-{n:06d}", "category": "Fuga de agua"},
                        "citizen": {"msisdn": number[n % CITIZENS]},
                    }
                )
                next_event += 1 / args.events_per_second
            if now >= next_mo:
                text = rng.choice(MO_TEXTS).format(n=rng.randrange(1, next(ids)))
                answer = send_mo(sim_http, rng.choice(number), text)
                if answer == 409:  # no receiver bound: the links are down (a fault, or the reconnect
                    mo_refused += 1  # backoff after binds were refused); /readyz is checked apart
                elif answer != 202:
                    failures.append(f"the simulator answered {answer} to an MO at {now - started:.0f} s")
                next_mo += args.mo_every_seconds
            if now >= next_broadcast:
                at = time.gmtime(time.time() + 86400)
                day = time.strftime("%Y-%m-%d", at)
                crm.post(
                    {
                        "id": f"agua-{next(ids)}",
                        "type": "water.outage",
                        "area": {"zones": ["Anzures", "11590"]},
                        "notice": {"starts_at": f"{day}T08:00:00-06:00", "ends_at": f"{day}T18:00:00-06:00"},
                    }
                )
                next_broadcast += args.broadcast_every_seconds
            if now >= next_fault:
                fault = rng.choice(FAULTS)
                if faults(sim_http, "PUT", fault) != 200:
                    failures.append(f"the simulator refused the fault {fault}")
                switched[json.dumps(fault)] += 1
                fault_off, next_fault = now + args.fault_seconds, next_fault + args.fault_every_seconds
            if fault_off is not None and now >= fault_off:
                faults(sim_http, "DELETE")
                fault_off, last_fault_off = None, now
            if now >= next_sample:
                taken = sample(gateway.pid, base, now - started, cpu0, sum(crm.answers.values()))
                taken["faulty"] = fault_off is not None or now < last_fault_off + 10
                samples.append(taken)
                next_sample += args.sample_seconds
            wake = min(next_event, next_mo, next_broadcast, next_sample, next_fault, fault_off or next_fault)
            time.sleep(max(0.0, wake - time.monotonic()))
        faults(sim_http, "DELETE")
        # settle: nothing queued or submitted any more
        deadline = time.monotonic() + args.settle_seconds
        watch = sqlite3.connect(db_path, timeout=30)
        open_statuses = "SELECT COUNT(*) FROM messages WHERE status IN ('queued', 'submitted')"
        while watch.execute(open_statuses).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(1)
        statuses = dict(watch.execute("SELECT status, COUNT(*) FROM messages GROUP BY status").fetchall())
        delivered_parts = watch.execute(
            "SELECT COUNT(*) FROM message_parts p JOIN messages m ON m.id = p.message_id"
            " WHERE m.status = 'delivered'"
        ).fetchone()[0]
        mo = watch.execute("SELECT COUNT(*) FROM mobile_messages").fetchone()[0]
        watch.close()
        samples.append(sample(gateway.pid, base, time.monotonic() - started, cpu0, sum(crm.answers.values())))
        code = gateway.stop(60)
        exit_status = gateway.popen.returncode
        gateway = None
        # the verdict
        print(f"statuses {statuses}; citizens' SMS handled {mo}; API answers {crm.answers}")
        print(f"faults switched on: {dict(switched)}; MO the SMSC could not deliver then: {mo_refused}")
        received = sim_received(sim_http)
        again = received - delivered_parts
        in_flight = 50 * sum(switched.values())  # a window (50) per fault episode
        print(f"the SMSC received {received} submit_sm for {delivered_parts} delivered parts ({again} again)")
        if received < delivered_parts:
            failures.append(f"{delivered_parts} parts delivered but the SMSC received only {received}")
        if again > in_flight:
            failures.append(f"{again} submit_sm received again, more than in flight at faults ({in_flight})")
        if statuses.get("queued") or statuses.get("submitted"):
            failures.append(f"not final after {args.settle_seconds:g} s: {statuses}")
        if any(s["readyz"] != 200 and not s.get("faulty") for s in samples):
            failures.append("readyz was not 200 at a sample taken with no fault on")
        if set(crm.answers) - {202}:
            failures.append(f"API answers other than 202: {crm.answers}")
        errors = [
            line for line in (tmp / "gateway.log").read_text().splitlines() if '"level": "error"' in line
        ]
        if errors:
            failures.append(f"{len(errors)} error lines logged, the first: {errors[0][:300]}")
        quarter = max(1, len(samples) // 4)
        if len(samples) >= 8:
            second = statistics.median(s["rss"] for s in samples[quarter : 2 * quarter])
            last = statistics.median(s["rss"] for s in samples[-quarter:])
            growth = (last - second) / second
            print(f"memory: {second:.1f} MB in the second quarter, {last:.1f} MB in the last ({growth:+.1%})")
            if growth > args.max_rss_growth:
                failures.append(f"resident memory grew {growth:.1%} between the second and last quarter")
            fds = samples[-1]["fds"] - samples[quarter]["fds"]
            if fds > 20:
                failures.append(f"open descriptors grew by {fds}")
        if exit_status != 0:
            failures.append(f"the gateway exited with status {exit_status} after SIGTERM ({code:.1f} s)")
    finally:
        if gateway is not None:
            gateway.stop()
        sim.stop()
    for failure in failures:
        print("FAIL:", failure)
    print("soak passed" if not failures else f"soak failed ({len(failures)})")
    return 1 if failures else 0


def sample(pid: int, base: str, elapsed: float, cpu0: float, posted: int) -> dict:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {
        "minute": elapsed / 60,
        "rss": rss_mb(pid),
        "fds": descriptors(pid),
        "threads": threads(pid),
        "cpu": cpu_seconds(pid) - cpu0,
        "queued": metric(text, 'smsgw_outbox_messages{status="queued"}'),
        "backlog": metric(text, "smsgw_status_writer_backlog"),
        "held": metric(text, "smsgw_status_writer_orphans"),
        "readyz": status_of(f"{base}/readyz"),
    }
    print(
        f"{out['minute']:6.1f} {out['rss']:8.1f} {out['fds']:5d} {out['threads']:4d} {out['cpu']:7.1f} "
        f"{out['queued']:7.0f} {out['backlog']:7.0f} {out['held']:5.0f} {out['readyz']:6d} {posted:7d}",
        flush=True,
    )
    return out


if __name__ == "__main__":
    sys.exit(main())
