"""The subscription service every way in calls: explicit consent after an opt-out, the opt-out's
cancellations reported to the CRM hook, the ledger naming where a change came from, and the
import's set-based rows under the same rules. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.domain.subscriptions import Catalogue, SubscriberRow
from gateway.domain.zones import load_zones
from gateway.services.subscriptions import ConsentRequired, ImportRow, Origin, SubscriptionService
from gateway.store import consent, outbox
from gateway.store.models import consent_events
from gateway.store.zones import sync_zones

NOW = datetime(2026, 11, 30, 16, 0)
ANA = "+525512345678"
CATALOGUE = Catalogue(load_zones(), ("es", "en"))


def test_an_opted_out_citizen_is_subscribed_again_only_with_explicit_consent(db):
    service = SubscriptionService(CATALOGUE)
    api = Origin(consent.API, '{"msisdn": "5512345678"}', client_id="cesac")
    zones = CATALOGUE.zones_of(["Anzures"])

    def opt_out_then_subscribe(conn, explicit: bool):
        citizen = service.citizen(conn, ANA, "es", NOW)
        service.opt_out(conn, citizen, api, NOW)
        return service.subscribe(conn, citizen, ("AGUA",), zones, api, NOW, explicit=explicit)

    with pytest.raises(ConsentRequired):
        db.transaction(opt_out_then_subscribe, False)
    done = db.transaction(opt_out_then_subscribe, True)
    assert done.opted_in and done.added == 1 and done.zones == zones and len(done.zone_ids) == 1
    with db.engine.connect() as conn:
        ledger = conn.execute(
            select(consent_events.c.action, consent_events.c.channel, consent_events.c.client_id)
        ).all()
    assert [tuple(r) for r in ledger] == [
        ("opt_out", "api", "cesac"), ("opt_in", "api", "cesac"), ("subscribe", "api", "cesac")
    ]  # fmt: skip


def test_an_opt_out_reports_what_it_cancelled_to_the_hook(db):
    told: list[tuple[list[int], str]] = []
    service = SubscriptionService(CATALOGUE, lambda conn, ids, status, now: told.append((ids, status.value)))

    def work(conn):
        citizen = service.citizen(conn, ANA, "es", NOW)
        (waiting,) = outbox.enqueue(
            conn,
            [{"citizen_id": citizen.id, "msisdn": ANA, "language": "es", "body": "x", "encoding": "gsm7",
              "segments": 1, "priority": 2, "expires_at": NOW + timedelta(hours=1)}],
            NOW,
        )  # fmt: skip
        stopped = service.opt_out(conn, citizen, Origin(consent.SMS, "BAJA", carrier="telcel"), NOW)
        return waiting, stopped

    waiting, stopped = db.transaction(work)
    assert stopped.cancelled == [waiting] and told == [([waiting], "cancelled")]
    assert db.transaction(service.view, ANA).opted_out


def test_an_import_skips_opted_out_numbers_and_a_second_pass_changes_nothing(db):
    service = SubscriptionService(CATALOGUE)
    zone_ids = db.transaction(sync_zones, CATALOGUE.zones, NOW)

    def row(line: int, msisdn: str, zones: str, language: str = "") -> ImportRow:
        data = {"msisdn": msisdn, "topics": "AGUA", "zones": zones, "language": language}
        return ImportRow.of(line, f"s.csv:{line}", CATALOGUE.validate(SubscriberRow, data))

    db.transaction(
        lambda conn: service.opt_out(conn, service.citizen(conn, ANA, "es", NOW), Origin("cli"), NOW)
    )
    rows = [row(2, ANA, "Anzures"), row(3, "5512340001", "11560", "en"), row(4, "5512340001", "", "es")]
    done = db.transaction(service.import_rows, rows, zone_ids, NOW)
    assert done.opted_out == [2] and [r.line for r in done.applied] == [3, 4]
    assert (done.citizens_added, done.subscriptions_added, done.consent_events) == (1, 2, 2)
    assert db.transaction(service.view, "+525512340001").language == "es"  # the number's last one
    again = db.transaction(service.import_rows, rows, zone_ids, NOW)
    assert (again.rows_changed, again.subscriptions_added, again.consent_events) == (0, 0, 0)


def test_an_import_file_with_an_unreadable_row_reports_it_and_keeps_the_others(db, tmp_path):
    from gateway.services.subscriber_import import import_subscribers

    path = tmp_path / "subscribers.csv"
    huge = '"' + "x" * 200_000 + '"'  # over the CSV reader's field limit
    path.write_text(f"msisdn,topics,zones\n5512340001,AGUA,Anzures\n{huge},AGUA,\n5512340002,VIAL,11560\n")
    report = import_subscribers(SubscriptionService(CATALOGUE), db.engine, path, now=NOW)
    assert report.good == 2 and report.rows == 3
    ((line, reason),) = report.bad
    assert line == 3 and reason.startswith("unreadable row: field larger than field limit")
    header_only = tmp_path / "bad-header.csv"
    header_only.write_text(huge + "\n")
    with pytest.raises(ValueError, match="line 1: unreadable header"):
        import_subscribers(SubscriptionService(CATALOGUE), db.engine, header_only, now=NOW)
