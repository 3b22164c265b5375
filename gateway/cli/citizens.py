"""``smsgw subscribers import`` and ``smsgw citizens export / forget``.

They need the database and the zone catalogue, not the carriers nor the CRM secrets: the
configuration is read without requiring the secrets' environment variables.

Exit status: 0 done; 1 the import had bad rows (the good ones were imported) or the number is
unknown to ``export``; 2 nothing could be done (configuration, file, schema, number).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from config.settings import DEFAULT_CONFIG, ConfigError, Settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.services.citizen_data import CitizenData

T = TypeVar("T")


def _settings(path: str | None) -> Settings:
    from config.settings import load_settings
    from gateway.cli.common import AnySecret, fail

    try:
        return load_settings(path or DEFAULT_CONFIG, env=AnySecret(os.environ))
    except ConfigError as exc:
        fail(str(exc))
        raise


def cmd_subscribers_import(args: argparse.Namespace) -> None:
    from gateway.cli.common import check_schema, fail
    from gateway.cli.progress import ProgressBar
    from gateway.domain.subscriptions import Catalogue
    from gateway.domain.templates import DEFAULT_DIRECTORY, languages_in
    from gateway.domain.zones import DEFAULT_ZONES_FILE, load_zones
    from gateway.services.subscriber_import import ImportReport, import_subscribers
    from gateway.services.subscriptions import SubscriptionService
    from gateway.store.db import make_engine

    settings = _settings(args.config)
    check_schema(settings)
    try:
        directory = load_zones(settings.path(settings.notices.zones_file) or DEFAULT_ZONES_FILE)
    except (ValueError, OSError) as exc:
        fail(f"zones: {exc}")
    languages = languages_in(settings.path(settings.templates.directory) or DEFAULT_DIRECTORY)
    service = SubscriptionService(Catalogue(directory, languages))
    engine = make_engine(settings.database.url)
    gc.freeze()  # what start-up built lives to the end: the collector's passes over the rows skip it
    report: ImportReport | None = None
    try:
        report = import_subscribers(
            service, engine, args.file, chunk_rows=args.chunk, progress=None if args.quiet else ProgressBar()
        )
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        fail(f"import: {exc}")
    finally:
        engine.dispose()
    if report.bad:
        print(report.bad_rows(), file=sys.stderr)
    print(report.summary())
    if report.bad:
        raise SystemExit(1)


def _citizen_data(args: argparse.Namespace, act: Callable[[CitizenData, Connection, str], T]) -> T:
    """``act(service, conn, number)`` with the citizens' data service, in one transaction."""
    from gateway.cli.common import check_schema, fail
    from gateway.domain.phone import InvalidNumber
    from gateway.roles import callback_queue
    from gateway.services.citizen_data import CitizenData
    from gateway.store.db import Database

    settings = _settings(args.config)
    check_schema(settings)
    callbacks = callback_queue(settings)
    service = CitizenData(callbacks.message_status if callbacks.enabled else None)
    db = Database(settings.database.url)
    try:
        return db.transaction(lambda conn: act(service, conn, args.number))
    except InvalidNumber as exc:
        fail(str(exc))
        raise
    finally:
        db.close()


def cmd_citizens_export(args: argparse.Namespace) -> None:
    from gateway.services.citizen_data import CitizenData

    msisdn, data = _citizen_data(args, CitizenData.export)
    if data is None:
        print(f"smsgw: nothing is held about {msisdn}", file=sys.stderr)
        raise SystemExit(1)
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def cmd_citizens_forget(args: argparse.Namespace) -> None:
    from gateway.services.citizen_data import CitizenData

    msisdn, result = _citizen_data(args, CitizenData.forget)
    erased = result["erased"]
    lines = [
        f"{msisdn}: personal data erased; the number is kept, opted out, so it is never messaged again.",
        "erased:",
        f"  name: {'yes' if erased['name'] else 'none held'}",
        f"  subscriptions removed: {erased['subscriptions']}",
        f"  messages still waiting, cancelled: {erased['messages_cancelled']}",
        f"  texts of messages sent to them: {erased['message_texts']}",
        f"  texts of SMS they sent: {erased['sms_received_texts']}",
        f"  raw texts in the consent ledger (and every zone named there): {erased['consent_raw_texts']}",
        f"  cases: {erased['cases']}, appointments: {erased['appointments']} (the CRM keeps its own records)",
        f"  CRM event payloads: {erased['crm_event_payloads']}",
        f"  entries of CRM phone directories: {erased['crm_phone_directory']}",
        "kept, and why:",
        *(f"  {what}: {why}" for what, why in result["kept"].items()),
        "  a consent event 'forgotten' (channel cli) records this erasure.",
    ]
    print("\n".join(lines))


def register(sub) -> None:
    """Add the commands to ``smsgw``'s sub-parsers."""
    subscribers = sub.add_parser("subscribers", help="subscribers in bulk")
    subscribers_sub = subscribers.add_subparsers(dest="subscribers_command", required=True)
    imp = subscribers_sub.add_parser(
        "import",
        help="import FILE.csv (msisdn,topics,zones,language; topics and zones separated by ';')",
        description=(
            "Bad rows are reported with their line number and reason; good rows are kept. A second "
            "import of the same file changes nothing. Opted-out numbers are not subscribed again. "
            "Exit status 1 when some rows were bad."
        ),
    )
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--config", metavar="PATH", help="TOML configuration file")
    imp.add_argument("--chunk", type=int, default=5000, help="rows per transaction (default 5000)")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_subscribers_import)

    people = sub.add_parser("citizens", help="a citizen's data: export, forget (data-protection rights)")
    people_sub = people.add_subparsers(dest="citizens_command", required=True)
    exp = people_sub.add_parser("export", help="print everything held about a number (JSON)")
    exp.add_argument("number", metavar="NUMBER")
    exp.add_argument("--config", metavar="PATH", help="TOML configuration file")
    exp.set_defaults(func=cmd_citizens_export)
    fgt = people_sub.add_parser(
        "forget", help="erase a number's personal data; keep it opted out so it is never messaged again"
    )
    fgt.add_argument("number", metavar="NUMBER")
    fgt.add_argument("--config", metavar="PATH", help="TOML configuration file")
    fgt.set_defaults(func=cmd_citizens_forget)
