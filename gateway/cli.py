"""The ``smsgw`` command line (spec section 2)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from config.settings import DEMO_CONFIG, ConfigError, Settings, load_settings

T = TypeVar("T")

DEMO_ENV_DEFAULTS = {
    "SMSGW_DEMO_SECRET": "demo-secret",
    "SMSGW_DEMO_SMSC_PASSWORD": "smsgw",
    "SMSGW_DEMO_DASHBOARD_PASSWORD": "demo",
}


def _fail(message: str, code: int = 2) -> None:
    print(f"smsgw: {message}", file=sys.stderr)
    raise SystemExit(code)


def _load(path: str | None, default: Path | None = None) -> Settings:
    try:
        return load_settings(path or default)
    except ConfigError as exc:
        _fail(str(exc))
        raise


def _setup_logging(settings: Settings, fmt: str | None = None) -> None:
    from gateway.logging import configure_logging

    configure_logging(fmt or settings.gateway.log_format, settings.gateway.log_level)


def _run(main: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run ``main(stop_event)`` on uvloop when available; SIGINT/SIGTERM set the event."""

    async def runner() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        factory = None
    with asyncio.Runner(loop_factory=factory) as r:
        return r.run(runner())


def _exit_now(code: int, why: str) -> None:
    """End the process without waiting for threads (a database call stuck on a lock or a dead
    server would keep it alive past its grace time)."""
    print(f"smsgw: {why}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(code)


def _check_schema(settings: Settings) -> None:
    from gateway.store.migrate import current, head

    have = current(settings.database.url)
    if have != head():
        _fail(
            f"the database is at revision {have or 'none'}, this smsgw needs {head()}: "
            f"run `smsgw db upgrade --config {settings.source_path or 'PATH'}` first"
        )


# --- commands -------------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> None:
    from gateway.store.migrate import upgrade

    settings = _load(args.config)
    _setup_logging(settings)
    upgrade(settings.database.url)
    print("database is at the latest revision")


def cmd_serve(args: argparse.Namespace) -> None:
    from gateway.runtime import GatewayRuntime

    settings = _load(args.config)
    _setup_logging(settings)
    _check_schema(settings)
    _check_templates(settings)

    grace = settings.gateway.shutdown_grace_seconds

    async def main(stop: asyncio.Event) -> tuple[bool, bool]:
        gateway = GatewayRuntime(settings)
        await gateway.start()
        try:
            await stop.wait()
        finally:
            # the runtime's stop is bounded; this is the last resort should anything still hang
            late = f"not stopped {grace + 5:g} s after the signal"
            watchdog = threading.Timer(grace + 5, _exit_now, (1, late))
            watchdog.daemon = True
            watchdog.start()
            clean = await gateway.stop(grace)
        return clean, gateway.db is not None and gateway.db.busy

    clean, stuck = _run(main)
    if stuck:
        _exit_now(1, "stopped with database work still running (the log says what was not written)")
    if not clean:
        raise SystemExit(1)


def _simulator_settings(settings: Settings):
    from simulator.settings import load_settings as load_simulator_settings

    try:
        return load_simulator_settings(settings.simulator)
    except ConfigError as exc:
        _fail(str(exc))


def cmd_simulator(args: argparse.Namespace) -> None:
    from gateway.demo import simulator_ports
    from simulator.app import Simulator

    settings = _load(args.config, DEMO_CONFIG)
    _setup_logging(settings, "console")
    sim_settings = _simulator_settings(settings)

    async def main(stop: asyncio.Event) -> None:
        sim = Simulator(sim_settings)
        await sim.start()
        print(f"SMSC simulator: {simulator_ports(sim)}; virtual handsets on {sim.http_url}/", flush=True)
        try:
            await stop.wait()
        finally:
            await sim.stop()

    _run(main)


def cmd_demo(args: argparse.Namespace) -> None:
    from gateway.demo import banner
    from gateway.runtime import GatewayRuntime
    from gateway.store.migrate import upgrade
    from simulator.app import Simulator

    for key, value in DEMO_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    settings = _load(args.config, DEMO_CONFIG)
    _setup_logging(settings)
    sim_settings = _simulator_settings(settings)
    _check_templates(settings)
    upgrade(settings.database.url)

    async def main(stop: asyncio.Event) -> None:
        sim = Simulator(sim_settings)
        await sim.start()
        gateway = GatewayRuntime(settings)
        await gateway.start()
        await gateway.pool.wait_bound(5)
        await gateway.notices.seed_demo()  # demo zones' subscribers (spec section 2)
        print(banner(settings, gateway, sim), flush=True)
        try:
            await stop.wait()
        finally:
            print("\nstopping…", flush=True)
            await gateway.stop()
            await sim.stop()

    _run(main)


# --- templates (issue 5) ----------------------------------------------------------------------------


def _check_templates(settings: Settings) -> None:
    """A template that can render longer than [templates] max_segments stops start-up."""
    from gateway.domain.preview import TemplateTooLong
    from gateway.notices import check
    from gateway.replies import check_reply_templates

    try:
        check(settings)
        check_reply_templates(settings)  # issue 6: replies to citizens' SMS, AYUDA in one part
    except (TemplateTooLong, ValueError, OSError) as exc:
        _fail(f"templates: {exc}")


class _AnySecret(dict):
    """The environment, where every *_env secret counts as set: previews need no secrets."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return os.environ.get(key) or "(not needed for a preview)"


def cmd_templates_preview(args: argparse.Namespace) -> None:
    from config.settings import load_settings as load
    from gateway.domain.preview import TemplateTooLong, format_preview
    from gateway.notices import check

    try:
        settings = load(args.config or DEMO_CONFIG, env=_AnySecret(os.environ))
    except ConfigError as exc:
        _fail(str(exc))
    try:
        reports = check(settings)
    except (TemplateTooLong, ValueError, OSError) as exc:
        _fail(f"templates: {exc}", code=1)
    print(format_preview(reports, settings.templates.max_segments))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsgw", description="SMS citizen-notification gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", metavar="PATH", help="TOML configuration file")
        p.set_defaults(func=func)
        return p

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply Alembic migrations up to the latest revision")
    up.add_argument("--config", metavar="PATH", help="TOML configuration file")
    up.set_defaults(func=cmd_db_upgrade)
    add("serve", cmd_serve, "run the gateway against the configured database and carriers")
    add("simulator", cmd_simulator, "run the SMSC simulator alone")
    add("demo", cmd_demo, "gateway + bundled simulator on SQLite, in one process")
    templates = sub.add_parser("templates", help="message templates")
    templates_sub = templates.add_subparsers(dest="templates_command", required=True)
    preview = templates_sub.add_parser("preview", help="each template's example with encoding and parts")
    preview.add_argument("--config", metavar="PATH", help="TOML configuration file (default: the demo's)")
    preview.set_defaults(func=cmd_templates_preview)
    from gateway.citizen_commands import register  # issue 6: subscribers import, citizens export/forget

    register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
