"""``smsgw simulator`` and ``smsgw demo --port-base`` as a user runs them: real processes, real
ports (free ones, found at run time), no gateway secrets in the environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
import smpplib.client

from config.settings import DEMO_CONFIG

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 45


def _free_ports(count: int) -> int:
    """The first of ``count`` consecutive free TCP ports on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65000:
            continue
        held = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return first
    raise RuntimeError("no run of free ports found")


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without any SMSGW_* variable (no gateway secret is set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGW_")}
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def _running(args: list[str], env: dict[str, str], ready: str, cwd: Path):
    """Start ``python -m gateway.cli ARGS``; yield (process, the output up to the line containing
    ``ready``); SIGTERM at the end (the process must exit by itself)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli.main",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    try:

        async def until_ready() -> None:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    raise AssertionError("the process ended before it was ready:\n" + "".join(output))
                output.append(line.decode(errors="replace"))
                if ready in output[-1]:
                    return

        await asyncio.wait_for(until_ready(), START_TIMEOUT)
        drain = asyncio.create_task(proc.stdout.read())  # keep the pipe from filling up
        yield proc, "".join(output)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    drain.cancel()
    assert proc.returncode == 0, "".join(output)


async def _get_json(url: str) -> tuple[int, object]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            return resp.status, await resp.json(content_type=None)


def _bind(port: int, system_id: str = "smsgw", password: str = "smsgw") -> bool:
    """Bind with smpplib (an independent client); raises smpplib's PDUError when refused."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
    client.connect()
    try:
        client.bind_transceiver(system_id=system_id, password=password)
        client.unbind()
        return True
    finally:
        client.disconnect()


async def _binds(port: int) -> bool:
    return await asyncio.to_thread(_bind, port)


async def _simulator_carriers(http_port: int) -> dict[str, int]:
    status, body = await _get_json(f"http://127.0.0.1:{http_port}/sim/carriers")
    assert status == 200
    return {c["name"]: c["port"] for c in body["carriers"]}


def _simulator_ports(base: int, **extra: str) -> dict[str, str]:
    """The environment moving the simulator's defaults to base (HTTP), base + 1 and base + 2."""
    return _env(
        SMSGW_SIMULATOR_HTTP_LISTEN=f"127.0.0.1:{base}",
        SMSGW_SIMULATOR_CARRIERS_TELCEL_PORT=str(base + 1),
        SMSGW_SIMULATOR_CARRIERS_MOVISTAR_PORT=str(base + 2),
        **extra,
    )


async def test_simulator_alone_runs_its_own_defaults_without_gateway_secrets(tmp_path):
    base = _free_ports(3)
    env = _simulator_ports(base)
    async with _running(["simulator"], env, "SMSC simulator:", tmp_path) as (_, banner):
        assert f"telcel on port {base + 1}, movistar on port {base + 2}" in banner
        assert await _simulator_carriers(base) == {"telcel": base + 1, "movistar": base + 2}
        assert await _binds(base + 1) and await _binds(base + 2)  # the defaults' smsgw / smsgw


async def test_simulator_with_the_demo_config_reads_only_its_simulator_table(tmp_path):
    base = _free_ports(3)
    env = _simulator_ports(base, SMSGW_DATABASE_URL="not a database url")  # gateway sections: unread
    args = ["simulator", "--config", str(DEMO_CONFIG)]
    async with _running(args, env, "SMSC simulator:", tmp_path):
        assert await _simulator_carriers(base) == {"telcel": base + 1, "movistar": base + 2}
        assert await _binds(base + 1)


async def test_simulator_configuration_mistakes_name_the_key_and_the_variable(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli.main",
        "simulator",
        env=_env(SMSGW_SIMULATOR_CARRIERS_TELCEL_PORT="many"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    message = err.decode().strip()
    assert message.startswith("smsgw: config error: simulator.carriers[0].port:"), message
    assert "SMSGW_SIMULATOR_CARRIERS_TELCEL_PORT" in message and "\n" not in message


async def test_demo_moves_to_the_ports_of_port_base(tmp_path):
    base = _free_ports(4)
    env = _env(SMSGW_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}")
    args = ["demo", "--port-base", str(base)]
    async with _running(args, env, "/api/v1/messages/1", tmp_path) as (_, banner):
        assert f"http://127.0.0.1:{base}" in banner and f"http://127.0.0.1:{base + 1}/" in banner
        assert "telcel bound, movistar bound" in banner
        assert await _simulator_carriers(base + 1) == {"telcel": base + 2, "movistar": base + 3}
        status, ready = await _get_json(f"http://127.0.0.1:{base}/readyz")
        assert status == 200, ready
