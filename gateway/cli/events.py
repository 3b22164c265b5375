"""``smsgw events import`` and ``smsgw crm phones import``: what a CRM gives as files.

They need the database, the templates and the zone catalogue, not the carriers nor the CRM
secrets. Exit status: 0 done; 1 some rows were bad (the good ones were imported); 2 nothing could
be done (configuration, file, schema, client).
"""

from __future__ import annotations

import argparse
import asyncio
import sys


def _client(settings, client_id: str) -> None:
    from gateway.cli.common import fail

    if settings.crm_client(client_id) is None:
        known = ", ".join(c.id for c in settings.crm_clients) or "none configured"
        fail(f"unknown CRM client {client_id!r} (crm_clients: {known})")


def cmd_events_import(args: argparse.Namespace) -> None:
    from gateway import clock
    from gateway.cli.citizens import _settings
    from gateway.cli.common import check_schema, check_templates, fail
    from gateway.cli.progress import ProgressBar
    from gateway.logging import configure_logging
    from gateway.roles import build_policy
    from gateway.services.event_import import import_events
    from gateway.services.intake import IntakeService
    from gateway.signals import Signals
    from gateway.store.db import Database
    from gateway.store.intake import IntakeBatcher
    from gateway.store.signatures import SeenSignatures
    from gateway.store.zones import sync_zones

    settings = _settings(args.config)
    configure_logging("console", "warning")  # the report says what happened, row by row
    _client(settings, args.client)
    check_schema(settings)
    check_templates(settings)
    try:
        policy = build_policy(settings)
    except (ValueError, OSError) as exc:
        fail(f"zones: {exc}")
    db = Database(settings.database.url)

    async def run():
        await db.run(sync_zones, policy.zones, clock.utcnow())
        # the wake-ups reach no one here: the running gateway's dispatcher, fan-out and reminders
        # poll for work
        batcher = IntakeBatcher(db, policy, clock.now)
        service = IntakeService(db, policy, batcher, Signals(), SeenSignatures(db, 300))
        return await import_events(
            service, args.client, args.file, progress=None if args.quiet else ProgressBar()
        )

    try:
        report = asyncio.run(run())
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        fail(f"import: {exc}")
    finally:
        db.close()
    if report.bad:
        print(report.bad_rows(), file=sys.stderr)
    print(report.summary())
    if report.bad:
        raise SystemExit(1)


def cmd_crm_phones_import(args: argparse.Namespace) -> None:
    from crm_adapters.phone_import import import_phone_numbers
    from gateway.cli.citizens import _settings
    from gateway.cli.common import check_schema, fail
    from gateway.services.csv_files import bad_rows
    from gateway.store.db import Database

    settings = _settings(args.config)
    _client(settings, args.client)
    check_schema(settings)
    db = Database(settings.database.url)
    try:
        report = import_phone_numbers(db, args.client, args.file)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        fail(f"import: {exc}")
    finally:
        db.close()
    if report.bad:
        print(bad_rows(report.bad), file=sys.stderr)
    print(report.summary())
    if report.bad:
        raise SystemExit(1)


def register(sub) -> None:
    """Add the commands to ``smsgw``'s sub-parsers."""
    events = sub.add_parser("events", help="case events from files")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    imp = events_sub.add_parser(
        "import",
        help="import FILE.csv: a header of case event fields (id,type,case.folio,citizen.msisdn,…)",
        description=(
            "Each row is a case event, accepted exactly as a posted one (area.zones separated by ';'). "
            "Bad rows are reported with their line number and the field at fault; good rows are kept. "
            "Importing the same file again changes nothing. Exit status 1 when some rows were bad."
        ),
    )
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--client", required=True, metavar="ID", help="the CRM client the events belong to")
    imp.add_argument("--config", metavar="PATH", help="TOML configuration file")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_events_import)

    crm = sub.add_parser("crm", help="CRM adapters' data")
    crm_sub = crm.add_subparsers(dest="crm_command", required=True)
    phones = crm_sub.add_parser("phones", help="the phone directory of CRMs that do not publish numbers")
    phones_sub = phones.add_subparsers(dest="phones_command", required=True)
    pimp = phones_sub.add_parser(
        "import",
        help="import FILE.csv (key,msisdn): key is the value of the adapter's phone_lookup_field",
    )
    pimp.add_argument("file", metavar="FILE.csv")
    pimp.add_argument("--client", required=True, metavar="ID", help="the CRM client the numbers belong to")
    pimp.add_argument("--config", metavar="PATH", help="TOML configuration file")
    pimp.set_defaults(func=cmd_crm_phones_import)
