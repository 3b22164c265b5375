"""The simulator as one object: SMPP carriers + HTTP control API + handsets page.

```python
sim = Simulator(load_settings(raw_toml_table))   # or SimulatorSettings(...)
await sim.start()
sim.carrier_port("telcel"), sim.http_port, sim.store
await sim.stop()
```

For the command line: :func:`main_simulator` (blocking, installs uvloop when importable, stops on
Ctrl-C / SIGTERM) or ``await run_forever(settings)`` inside a running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import structlog
from aiohttp import web

from .http import make_app
from .settings import SimulatorSettings, load_settings
from .smsc import Smsc
from .store import Store

log = structlog.get_logger("simulator")


class Simulator:
    def __init__(self, settings: SimulatorSettings | None = None):
        self.settings = settings or SimulatorSettings()
        self.smsc = Smsc(self.settings)
        self.app = make_app(self.smsc)
        self._runner: web.AppRunner | None = None
        self._http_port: int | None = None

    @property
    def store(self) -> Store:
        return self.smsc.store

    @property
    def http_port(self) -> int:
        if self._http_port is None:
            raise RuntimeError("simulator not started")
        return self._http_port

    @property
    def http_url(self) -> str:
        host = self.settings.http_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.http_port}"

    def carrier_port(self, name: str) -> int:
        return self.smsc.carriers[name].port

    async def start(self) -> None:
        await self.smsc.start()
        try:
            self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(
                self._runner, self.settings.http_host, self.settings.http_port, reuse_address=True
            )
            await site.start()
            addresses = self._runner.addresses
            self._http_port = addresses[0][1] if addresses else self.settings.http_port
        except BaseException:
            await self.stop()
            raise
        log.info(
            "simulator started",
            http=self.http_url,
            carriers={name: c.port for name, c in self.smsc.carriers.items()},
        )

    async def stop(self) -> None:
        await self.smsc.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        log.info("simulator stopped")

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


async def run_forever(settings: SimulatorSettings, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT / SIGTERM (or cancellation)."""
    sim = Simulator(settings)
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await sim.stop()


def main_simulator(settings_dict: dict[str, Any] | None, log: Any = None) -> None:
    """Entry point for ``smsgw simulator``: validate the ``[simulator]`` table and serve until Ctrl-C.

    Raises ``config.settings.ConfigError`` (one line naming ``simulator.<key>``) on a bad table.
    """
    settings = load_settings(settings_dict)
    logger = log or structlog.get_logger("simulator")
    carriers = ", ".join(f"{c.name} on {c.host}:{c.port}" for c in settings.carriers)
    logger.info("starting SMSC simulator", carriers=carriers, http=settings.http_listen)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(run_forever(settings))
    else:
        uvloop.run(run_forever(settings))
