"""The ``smsgw`` command line: ``db upgrade``, ``serve``, ``simulator``, ``demo``, ``templates preview``,
``subscribers import``, ``citizens export / forget``."""

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
from gateway.cli.common import AnySecret, check_crm_mappings, check_schema, check_templates, fail, load

T = TypeVar("T")

DEMO_ENV_DEFAULTS = {
    "SMSGW_DEMO_SECRET": "demo-secret",
    "SMSGW_DEMO_SMSC_PASSWORD": "smsgw",
}


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


# --- commands -------------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> None:
    from gateway.store.migrate import upgrade

    settings = load(args.config)
    _setup_logging(settings)
    upgrade(settings.database.url)
    print("database is at the latest revision")


def cmd_serve(args: argparse.Namespace) -> None:
    from gateway.roles import Role, build

    settings = load(args.config)
    _setup_logging(settings)
    check_schema(settings)
    check_templates(settings)
    check_crm_mappings(settings)

    grace = settings.gateway.shutdown_grace_seconds

    async def main(stop: asyncio.Event) -> tuple[bool, bool]:
        gateway = build(settings, Role(args.role))
        await gateway.start()
        try:
            await stop.wait()
        finally:
            # the gateway's stop is bounded; this is the last resort should anything still hang
            late = f"not stopped {grace + 5:g} s after the signal"
            watchdog = threading.Timer(grace + 5, _exit_now, (1, late))
            watchdog.daemon = True
            watchdog.start()
            clean = await gateway.stop(grace)
        return clean, gateway.db.busy

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
        fail(str(exc))


def cmd_simulator(args: argparse.Namespace) -> None:
    """The simulator alone, like a carrier: its own settings, none of the gateway's secrets."""
    from config.settings import load_simulator_settings
    from gateway.cli.demo import simulator_ports
    from gateway.logging import configure_logging
    from simulator.app import Simulator

    try:
        sim_settings = load_simulator_settings(args.config)
    except ConfigError as exc:
        fail(str(exc))
    configure_logging("console", "info")

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
    from config.settings import read_toml
    from gateway import clock
    from gateway.cli.demo import banner, ensure_demo_operator, port_overrides
    from gateway.roles import build
    from gateway.store.migrate import upgrade
    from gateway.store.subscriptions import seed_demo
    from simulator.app import Simulator

    for key, value in DEMO_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    path = Path(args.config) if args.config else DEMO_CONFIG
    env = dict(os.environ)
    if args.port_base is not None:
        try:
            env.update(port_overrides(read_toml(path), args.port_base))
        except (ConfigError, ValueError) as exc:
            fail(str(exc))
    try:
        settings = load_settings(path, env=env)
    except ConfigError as exc:
        fail(str(exc))
    _setup_logging(settings)
    sim_settings = _simulator_settings(settings)
    check_templates(settings)
    check_crm_mappings(settings)
    upgrade(settings.database.url)
    ensure_demo_operator(settings.database.url)  # the dashboard's account, printed in the banner

    async def main(stop: asyncio.Event) -> None:
        sim = Simulator(sim_settings)
        await sim.start()
        gateway = build(settings)
        await gateway.start()
        await gateway.pool.wait_bound(5)
        await gateway.db.run(seed_demo, gateway.policy.zones, clock.utcnow())  # a few subscribers
        print(banner(settings, gateway, sim), flush=True)
        try:
            await stop.wait()
        finally:
            print("\nstopping…", flush=True)
            await gateway.stop()
            await sim.stop()

    _run(main)


# --- templates ------------------------------------------------------------------------------------


def cmd_templates_preview(args: argparse.Namespace) -> None:
    from gateway.domain.preview import TemplateTooLong, format_preview
    from gateway.roles import check_notice_templates

    try:
        settings = load_settings(args.config or DEMO_CONFIG, env=AnySecret(os.environ))
    except ConfigError as exc:
        fail(str(exc))
    try:
        reports = check_notice_templates(settings)
    except (TemplateTooLong, ValueError, OSError) as exc:
        fail(f"templates: {exc}", code=1)
    print(format_preview(reports, settings.templates.max_segments))


def _port_base(text: str) -> int:
    if not text.isdigit() or not 1024 <= int(text) <= 65000:
        raise argparse.ArgumentTypeError(f"expected a port number from 1024 to 65000, got {text!r}")
    return int(text)


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
    serve = add("serve", cmd_serve, "run the gateway against the configured database and carriers")
    serve.add_argument(
        "--role",
        choices=["all", "api", "dispatch"],
        default="all",
        help="api: the CRM API and dashboard; dispatch: the carrier links and the jobs; all: both",
    )
    simulator = add("simulator", cmd_simulator, "run the SMSC simulator alone")
    simulator.description = (
        "The SMSC simulator alone: the [simulator] table of --config (without it, the defaults: "
        "telcel on 2775, movistar on 2776, smsgw/smsgw, HTTP on 8081); SMSGW_SIMULATOR_* overrides."
    )
    demo = add("demo", cmd_demo, "gateway + bundled simulator on SQLite, in one process")
    demo.add_argument(
        "--port-base",
        metavar="N",
        type=_port_base,
        help="the gateway on port N, the simulator's HTTP on N+1, its carriers on N+2, N+3, …",
    )
    templates = sub.add_parser("templates", help="message templates")
    templates_sub = templates.add_subparsers(dest="templates_command", required=True)
    preview = templates_sub.add_parser("preview", help="each template's example with encoding and parts")
    preview.add_argument("--config", metavar="PATH", help="TOML configuration file (default: the demo's)")
    preview.set_defaults(func=cmd_templates_preview)
    from gateway.cli.citizens import register  # subscribers import, citizens export/forget

    register(sub)
    from gateway.cli.operators import register as register_operators

    register_operators(sub)
    from gateway.cli.events import register as register_event_commands

    register_event_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
