"""Throughput of the SMSC simulator: submit_sm/s answered, with a delivery receipt for each.

Starts one simulator process (one carrier, no speed limit, receipts at once, registered_delivery=1)
and drives it from this process with a minimal pipelined SMPP client (asyncio + uvloop + smsgw's
codec): ``--binds`` transceiver sessions, each keeping ``--window`` submit_sm unanswered, acking
every deliver_sm. A run ends when every submit_sm has its submit_sm_resp (ESME_ROK, unique id)
and every id its receipt; the rate is messages / (last receipt - first submit_sm). The
simulator's CPU time over the same span (user + system, from /proc) is reported per message:
on a shared machine it varies less than the rate does.

``--receipt-mode each`` has the simulator send every receipt on its own timer and in its own
write, as carriers do (the default, ``batched``, flushes the receipts due in each 5 ms tick in one
write); ``--deliver-window`` is the simulator's window of unacknowledged deliver_sm per session.

    python bench/sim_throughput.py                      # 3 runs of 100,000, prints the median
    python bench/sim_throughput.py --receipt-mode each --deliver-window 1
    python bench/sim_throughput.py --messages 20000 --runs 1 --binds 2 --window 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smpp_client.constants import Cmd  # noqa: E402
from smpp_client.pdu import make  # noqa: E402

HEADER = struct.Struct(">IIII")
BIND_TRX = int(Cmd.BIND_TRANSCEIVER)
BIND_TRX_RESP = int(Cmd.BIND_TRANSCEIVER_RESP)
SUBMIT_SM = int(Cmd.SUBMIT_SM)
SUBMIT_SM_RESP = int(Cmd.SUBMIT_SM_RESP)
DELIVER_SM = int(Cmd.DELIVER_SM)
DELIVER_SM_RESP = int(Cmd.DELIVER_SM_RESP)
ENQUIRE_LINK = int(Cmd.ENQUIRE_LINK)


def _use_uvloop(wanted: str = "uvloop") -> str:
    if wanted != "uvloop":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


# -- the server side (a separate process) -------------------------------------------------------------


def serve(loop: str, receipt_delay: float, receipt_mode: str, deliver_window: int) -> None:
    loop_name = _use_uvloop(loop)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from simulator.app import Simulator
    from simulator.settings import SimulatorSettings

    settings = SimulatorSettings.model_validate(
        {
            "http_listen": "127.0.0.1:0",
            "carriers": [
                {
                    "name": "bench",
                    "port": 0,
                    "receipt_delay": receipt_delay,
                    "receipt_mode": receipt_mode,
                    "deliver_window": deliver_window,
                    "max_binds": 16,
                }
            ],
        }
    )

    async def main() -> None:
        sim = Simulator(settings)
        await sim.start()
        print(
            json.dumps({"port": sim.carrier_port("bench"), "http": sim.http_port, "loop": loop_name}),
            flush=True,
        )
        await asyncio.get_running_loop().run_in_executor(
            None, sys.stdin.read
        )  # until the parent closes stdin
        await sim.stop()

    asyncio.run(main())


# -- the client side ----------------------------------------------------------------------------------


class BenchClient(asyncio.Protocol):
    def __init__(self, run: Run, window: int):
        self.run = run
        self.window = window
        self.inflight = 0
        self.seq = 0
        self.buf = b""
        self.transport = None
        self.bound = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(make(BIND_TRX, 1, system_id="smsgw", password="smsgw", interface_version=0x34))
        self.seq = 1

    def connection_lost(self, exc) -> None:
        if not self.run.done.done():
            self.run.done.set_exception(ConnectionError(f"link lost: {exc}"))

    def fill(self) -> None:
        run = self.run
        room = self.window - self.inflight
        if room <= 0 or run.to_send <= 0:
            return
        count = min(room, run.to_send)
        run.to_send -= count
        self.inflight += count
        body = run.submit_body
        length = 16 + len(body)
        seq = self.seq
        frames = []
        for _ in range(count):
            seq += 1
            frames.append(HEADER.pack(length, SUBMIT_SM, 0, seq))
            frames.append(body)
        self.seq = seq
        if run.started is None:
            run.started = time.perf_counter()
        self.transport.write(b"".join(frames))

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
        run = self.run
        run.reads += 1
        n = len(data)
        pos = 0
        acks = []
        unpack = HEADER.unpack_from
        while n - pos >= 16:
            length, command_id, status, seq = unpack(data, pos)
            if n - pos < length:
                break
            if command_id == SUBMIT_SM_RESP:
                self.inflight -= 1
                if status:
                    run.errors += 1
                else:
                    run.ids.append(data[pos + 16 : pos + length - 1])
            elif command_id == DELIVER_SM:
                frame = data[pos : pos + length]
                start = frame.find(b"id:") + 3
                run.receipt_ids.append(frame[start : frame.find(b" ", start)])
                acks.append(HEADER.pack(17, DELIVER_SM_RESP, 0, seq) + b"\x00")
            elif command_id == BIND_TRX_RESP:
                if status:
                    self.bound.set_exception(RuntimeError(f"bind failed 0x{status:x}"))
                else:
                    self.bound.set_result(True)
            elif command_id == ENQUIRE_LINK:
                acks.append(HEADER.pack(16, ENQUIRE_LINK | 0x80000000, 0, seq))
            pos += length
        self.buf = data[pos:]
        if acks:
            self.transport.write(b"".join(acks))
        if self.bound.done():
            self.fill()
        if (
            len(run.receipt_ids) >= run.total
            and len(run.ids) + run.errors >= run.total
            and not run.done.done()
        ):
            run.finished = time.perf_counter()
            run.done.set_result(True)


class Run:
    def __init__(self, total: int):
        self.total = total
        self.to_send = total
        self.ids: list[bytes] = []
        self.receipt_ids: list[bytes] = []
        self.errors = 0
        self.reads = 0
        self.started: float | None = None
        self.finished: float | None = None
        self.done = asyncio.get_running_loop().create_future()
        self.submit_body = make(
            SUBMIT_SM,
            0,
            source_addr_ton=6,
            source_addr_npi=1,
            source_addr="30311",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="525512345678",
            registered_delivery=1,
            data_coding=0,
            short_message=b"Aviso: corte de agua en Polanco de 10:00 a 14:00. Folio MH-2026-004512.",
        )[16:]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None where /proc is not available)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_run(server_pid: int, port: int, messages: int, binds: int, window: int, timeout: float) -> dict:
    loop = asyncio.get_running_loop()
    run = Run(messages)
    clients = []
    for _ in range(binds):
        _, client = await loop.create_connection(lambda: BenchClient(run, window), "127.0.0.1", port)
        clients.append(client)
    await asyncio.gather(*(c.bound for c in clients))
    cpu_before = cpu_seconds(server_pid)
    client_before = time.process_time()
    for client in clients:
        client.fill()
    await asyncio.wait_for(run.done, timeout)
    cpu_after = cpu_seconds(server_pid)
    client_cpu = time.process_time() - client_before
    for client in clients:
        client.transport.close()
    elapsed = run.finished - run.started
    ids = set(run.ids)
    ok = run.errors == 0 and len(ids) == messages and set(run.receipt_ids) == ids
    return {
        "messages": messages,
        "seconds": round(elapsed, 3),
        "submit_sm_per_s": round(messages / elapsed),
        "server_cpu_us_per_msg": (
            round((cpu_after - cpu_before) * 1e6 / messages, 1) if cpu_before is not None else None
        ),
        "client_cpu_us_per_msg": round(client_cpu * 1e6 / messages, 1),
        "client_reads": run.reads,
        "errors": run.errors,
        "unique_ids": len(ids),
        "receipts": len(run.receipt_ids),
        "receipts_match_ids": ok,
    }


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            "--loop",
            args.loop,
            "--receipt-delay",
            str(args.receipt_delay),
            "--receipt-mode",
            args.receipt_mode,
            "--deliver-window",
            str(args.deliver_window),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("simulator process did not start")
    return proc, json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--binds", type=int, default=2)
    parser.add_argument("--window", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop of both sides"
    )
    parser.add_argument("--receipt-delay", type=float, default=0.0, help="seconds before each receipt is due")
    parser.add_argument(
        "--receipt-mode", choices=("batched", "each"), default="batched", help="the simulator's receipt_mode"
    )
    parser.add_argument(
        "--deliver-window",
        type=int,
        default=100,
        help="the simulator's deliver_sm unacknowledged per session",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.loop, args.receipt_delay, args.receipt_mode, args.deliver_window)
        return
    client_loop = _use_uvloop(args.loop)
    rates, cpus = [], []
    for index in range(args.runs):
        proc, info = start_server(args)
        try:
            result = asyncio.run(
                one_run(proc.pid, info["port"], args.messages, args.binds, args.window, args.timeout)
            )
        finally:
            proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        result.update(run=index + 1, server_loop=info["loop"], client_loop=client_loop)
        print(json.dumps(result), flush=True)
        if not result["receipts_match_ids"]:
            raise SystemExit("run failed: responses / receipts do not match")
        rates.append(result["submit_sm_per_s"])
        if result["server_cpu_us_per_msg"] is not None:
            cpus.append(result["server_cpu_us_per_msg"])
    cpu = f", simulator CPU {statistics.median(cpus):.1f} µs per message" if cpus else ""
    print(
        f"median of {args.runs} runs: {statistics.median(rates):,.0f} submit_sm/s answered, a receipt each"
        f"{cpu} ({args.messages:,} messages, {args.binds} binds x window {args.window}, "
        f"receipt_mode {args.receipt_mode}, deliver_window {args.deliver_window})"
    )


if __name__ == "__main__":
    main()
