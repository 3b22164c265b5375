"""`smsgw subscribers import` (bad rows by line, idempotent, opted-out numbers kept out) and
`smsgw citizens export / forget` (data-protection rights), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from gateway import clock
from gateway.cli.main import main
from gateway.domain.composer import Composer
from gateway.domain.events import Event
from gateway.domain.notices import NoticePolicy
from gateway.domain.subscriptions import Catalogue
from gateway.domain.templates import TemplateRenderer
from gateway.services.citizen_sms import CitizenInbox
from gateway.services.subscriptions import SubscriptionService
from gateway.store import broadcasts, outbox
from gateway.store.intake import accept_event
from gateway.store.models import (
    cases,
    citizens,
    consent_events,
    events,
    messages,
    mobile_messages,
    subscriptions,
    zones,
)
from gateway.store.zones import sync_zones

CITY = ZoneInfo("America/Mexico_City")


@pytest.fixture
def config(tmp_path, db_url):
    path = tmp_path / "smsgw.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return str(path)


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()  # what came before (log lines) is not the command's
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def count(db, table, *where) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


CSV = """msisdn,topics,zones,language
+525511110001,AGUA,Polanco V Sección,es
5511110002,AGUA;VIAL,"Anzures; 11560",en
55 1111 0003,,,
12345,AGUA,,es
+525511110005,LUZ,,es
+525511110006,AGUA,Narnia,es
+525511110007,AGUA,Polanco,es
+525511110008,AGUA,,fr
+52 1 55 1111 0009,emergencia,11590,
+525511110010,AGUA,11560,es,extra
"""


# --- import ---------------------------------------------------------------------------------------------


def test_import_keeps_good_rows_reports_bad_ones_by_line_and_twice_changes_nothing(
    tmp_path, config, db, capsys
):
    path = tmp_path / "subscribers.csv"
    path.write_text(CSV, encoding="utf-8")
    code, out, err = run(capsys, "subscribers", "import", str(path), "--config", config)
    assert code == 1  # some rows were bad; the good ones are in
    assert "[" in err and "100.0%" in err and "10/10 rows" in err  # the progress bar
    bad = [line for line in err.splitlines() if line.startswith("line ")]
    assert bad == [
        "line 5: msisdn: '12345' is not a Mexican mobile number: expected 10 digits, optionally with +52 "
        "(got 5 national digits)",
        "line 6: topics: unknown topic 'LUZ': expected AGUA, VIAL, EMERGENCIA, AVISOS (empty: all)",
        "line 7: zones[0]: unknown colonia or postal code 'Narnia' in the zone catalogue",
        "line 8: zones[0]: 'Polanco' means several colonias: Polanco I Sección (11510), Polanco II Sección "
        "(11530), Polanco III Sección (11540), Polanco IV Sección (11550), Polanco V Sección (11560); "
        "name one or give its postal code",
        "line 9: language: expected es or en (the languages with templates), got 'fr'",
        "line 11: 5 fields, the header has 4",
    ]
    assert "10 rows read" in out and "4 good, 6 bad" in out
    assert "4 good rows changed something: citizens added: 4; subscriptions added: 10;" in out
    assert "warning: subscribed to every zone of the borough (no zones given) on 1 row: line 4" in out
    with db.engine.connect() as conn:
        got = {
            (number, topic, name, language)
            for number, topic, name, language in conn.execute(
                select(citizens.c.msisdn, subscriptions.c.topic, zones.c.name, citizens.c.language)
                .join(subscriptions, subscriptions.c.citizen_id == citizens.c.id)
                .outerjoin(zones, zones.c.id == subscriptions.c.zone_id)
            )
        }
    assert got == {
        ("+525511110001", "AGUA", "Polanco V Sección", "es"),
        ("+525511110002", "AGUA", "Anzures", "en"),
        ("+525511110002", "AGUA", "Polanco V Sección", "en"),
        ("+525511110002", "VIAL", "Anzures", "en"),
        ("+525511110002", "VIAL", "Polanco V Sección", "en"),
        ("+525511110003", "AGUA", None, "es"),
        ("+525511110003", "VIAL", None, "es"),
        ("+525511110003", "EMERGENCIA", None, "es"),
        ("+525511110003", "AVISOS", None, "es"),
        ("+525511110009", "EMERGENCIA", "Anzures", "es"),
    }
    ledger = count(db, consent_events, consent_events.c.channel == "import")
    assert ledger == 4
    with db.engine.connect() as conn:
        raw = conn.execute(
            select(consent_events.c.raw)
            .join(citizens, citizens.c.id == consent_events.c.citizen_id)
            .where(citizens.c.msisdn == "+525511110001")
        ).scalar_one()
    assert raw == "subscribers.csv:2: +525511110001,AGUA,Polanco V Sección,es"
    code, out, err = run(capsys, "subscribers", "import", str(path), "--config", config, "--quiet")
    assert code == 1 and "nothing changed: every good row was already imported" in out
    assert err.count("line ") == 6 and "%" not in err
    assert count(db, consent_events) == 4 and count(db, subscriptions) == 10 and count(db, citizens) == 4


def test_the_summary_says_what_happened(tmp_path, config, db, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("msisdn,topics,zones,language\n12345,AGUA,,\n+525511110005,LUZ,,\n+525511110006,,,fr\n")
    code, out, _ = run(capsys, "subscribers", "import", str(bad), "--config", config, "--quiet")
    assert code == 1 and "0 good, 3 bad" in out
    assert "nothing changed: no row could be imported" in out and "already imported" not in out
    empty = tmp_path / "empty.csv"
    empty.write_text("msisdn,topics,zones,language\n")
    code, out, _ = run(capsys, "subscribers", "import", str(empty), "--config", config, "--quiet")
    assert code == 0 and "nothing changed: the file has no data rows" in out
    good = tmp_path / "good.csv"
    good.write_text(
        "msisdn,topics,zones,language\n"
        "+525511110001,AGUA,Anzures,es\n"
        "+525511110002,AGUA;VIAL,,es\n"  # every zone: imported, with a warning
        "+525511110003,,,\n"
    )
    code, out, _ = run(capsys, "subscribers", "import", str(good), "--config", config, "--quiet")
    assert code == 0 and "3 good rows changed something: citizens added: 3;" in out
    assert "warning: subscribed to every zone of the borough (no zones given) on 2 rows: lines 3, 4" in out
    good.write_text(good.read_text() + "+525511110001,AGUA,Anzures,en\n+525511110004,AVISOS,11560,\n")
    code, out, _ = run(capsys, "subscribers", "import", str(good), "--config", config, "--quiet")
    assert code == 0 and "2 good rows changed something (3 already imported): citizens added: 1;" in out
    assert "languages changed: 1;" in out
    code, out, _ = run(capsys, "subscribers", "import", str(good), "--config", config, "--quiet")
    assert "nothing changed: every good row was already imported" in out


def test_opted_out_numbers_are_not_subscribed_again_by_an_import(tmp_path, config, db, capsys):
    path = tmp_path / "s.csv"
    path.write_text("msisdn,topics,zones,language\n+525511110001,AGUA,,\n+525511110002,AGUA,,\n")
    assert run(capsys, "subscribers", "import", str(path), "--config", config)[0] == 0
    with db.engine.begin() as conn:
        conn.execute(update(citizens).where(citizens.c.msisdn == "+525511110001").values(opted_out=True))
        conn.execute(subscriptions.delete())
    code, out, _ = run(capsys, "subscribers", "import", str(path), "--config", config)
    assert code == 0
    assert "1 of opted-out numbers skipped" in out and "(only the citizen can, by SMS): line 2" in out
    assert count(db, subscriptions) == 1  # the other number only


def test_an_unusable_file_is_refused_with_one_line(tmp_path, config, capsys):
    path = tmp_path / "s.csv"
    path.write_text("phone,topics\n+525511110001,AGUA\n")
    code, _, err = run(capsys, "subscribers", "import", str(path), "--config", config)
    assert code == 2 and "no msisdn column" in err
    code, _, err = run(capsys, "subscribers", "import", str(tmp_path / "missing.csv"), "--config", config)
    assert code == 2 and "missing.csv" in err


# --- export and forget ------------------------------------------------------------------------------------


ANA = "+525512345678"


async def _ana_with_history(db):
    """Ana: a case (CRM event, a message), a subscription by SMS, and an SMS asking her case's status."""
    composer = Composer(TemplateRenderer(CITY, "30311"))
    policy = NoticePolicy(composer)
    policy.zone_ids = db.transaction(sync_zones, policy.zones, clock.utcnow())
    event = Event.model_validate(
        {
            "id": "e-1",
            "type": "case.received",
            "case": {"folio": "MH-2026-004512", "category": "Fuga de agua"},
            "citizen": {"msisdn": "55 1234 5678", "name": "Ana", "language": "es"},
        }
    )
    db.transaction(
        accept_event,
        "cesac",
        event,
        event.model_dump(mode="json"),
        composer,
        timedelta(hours=24),
        clock.utcnow(),
    )
    inbox = CitizenInbox(db, policy, SubscriptionService(Catalogue(policy.zones, policy.languages)))
    await inbox.handle("telcel", ANA, "ALTA AGUA Polanco V Sección", clock.utcnow())
    await inbox.handle("telcel", ANA, "ESTADO MH-2026-004512", clock.utcnow())
    return policy


async def test_export_shows_everything_held_about_a_number(config, db, capsys):
    await _ana_with_history(db)
    code, out, _ = run(capsys, "citizens", "export", "55 1234 5678", "--config", config)
    assert code == 0
    data = json.loads(out)
    assert data["citizen"]["msisdn"] == ANA and data["citizen"]["name"] == "Ana"
    assert data["subscriptions"] == [{"topic": "AGUA", "zone": "Polanco V Sección", "cp": "11560"}]
    assert [e["action"] for e in data["consent_events"]] == ["subscribe"]
    assert data["consent_events"][0]["raw"] == "ALTA AGUA Polanco V Sección"
    assert [c["folio"] for c in data["cases"]] == ["MH-2026-004512"]
    assert len(data["messages_sent"]) == 3  # the case message and two replies, with their texts
    assert "MH-2026-004512" in data["messages_sent"][0]["body"]
    assert [m["text"] for m in data["messages_received"]] == [
        "ALTA AGUA Polanco V Sección",
        "ESTADO MH-2026-004512",
    ]
    code, _, err = run(capsys, "citizens", "export", "55 9999 0000", "--config", config)
    assert code == 1 and "nothing is held" in err


async def test_forget_erases_personal_data_and_keeps_the_block(config, db, capsys):
    policy = await _ana_with_history(db)
    now = clock.utcnow()
    with db.engine.connect() as conn:
        cid = conn.execute(select(citizens.c.id).where(citizens.c.msisdn == ANA)).scalar_one()
    db.transaction(
        outbox.enqueue,
        [{"citizen_id": cid, "msisdn": ANA, "language": "es", "body": "pendiente", "encoding": "gsm7",
          "segments": 1, "priority": 2, "expires_at": now + timedelta(hours=2)}],
        now,
    )  # fmt: skip
    code, out, _ = run(capsys, "citizens", "forget", ANA, "--config", config)
    assert code == 0
    assert "personal data erased; the number is kept, opted out" in out
    # nothing was dispatched here: the case message, the two replies and the one queued above wait
    assert "subscriptions removed: 1" in out and "messages still waiting, cancelled: 4" in out
    assert "texts of SMS they sent: 2" in out and "kept, and why:" in out
    with db.engine.connect() as conn:
        row = conn.execute(select(citizens).where(citizens.c.msisdn == ANA)).mappings().one()
        assert row["opted_out"] and row["name"] is None
        assert set(conn.execute(select(messages.c.body).where(messages.c.msisdn == ANA)).scalars()) == {
            "[erased]"
        }
        assert set(conn.execute(select(mobile_messages.c.text)).scalars()) == {"[erased]"}
        assert conn.execute(select(func.count()).select_from(subscriptions)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == 0
        assert conn.execute(select(events.c.payload)).scalars().all() == [
            {"erased": True, "at": events_at(conn)}
        ]
        ledger = conn.execute(
            select(consent_events.c.action, consent_events.c.raw).order_by(consent_events.c.id)
        ).all()
        assert [tuple(r) for r in ledger] == [
            ("subscribe", "[erased]"),
            ("opt_out", None),
            ("forgotten", None),
        ]
        # never messaged again: not by a broadcast, not by a CRM event
        zone_id = policy.zone_ids[policy.zones.match("Polanco V Sección")[0].key]
        assert broadcasts.count_recipients(conn, "AGUA", [zone_id], "citizens") == 0
    composer = policy.composer
    event = Event.model_validate(
        {"id": "e-2", "type": "case.received", "case": {"folio": "MH-2026-9"}, "citizen": {"msisdn": ANA}}
    )
    response, _ = db.transaction(
        accept_event, "cesac", event, {}, composer, timedelta(hours=24), clock.utcnow()
    )
    assert response["message_ids"] == []
    code, out, _ = run(capsys, "citizens", "export", ANA, "--config", config)
    data = json.loads(out)
    assert data["citizen"]["opted_out"] is True and {m["text"] for m in data["messages_received"]} == {
        "[erased]"
    }


def events_at(conn) -> str:
    return conn.execute(select(events.c.payload)).scalars().first()["at"]


async def test_forget_tells_the_crm_of_the_messages_it_cancelled(tmp_path, db_url, db, capsys):
    from gateway.store.models import callbacks

    config = tmp_path / "crm.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n\n[[crm_clients]]\nid = "cesac"\nsecret_env = "SMSGW_CESAC_SECRET"\n'
        'callback_url = "https://crm.example/smsgw"\n',
        encoding="utf-8",
    )
    await _ana_with_history(db)  # the case message from cesac still waits
    code, out, _ = run(capsys, "citizens", "forget", ANA, "--config", str(config))
    assert code == 0 and "messages still waiting, cancelled: 3" in out
    with db.engine.connect() as conn:
        told = conn.execute(select(callbacks.c.client_id, callbacks.c.payload)).all()
    assert [(client, payload["status"]) for client, payload in told] == [("cesac", "cancelled")]
