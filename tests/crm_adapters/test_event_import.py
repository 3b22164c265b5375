"""``smsgw events import FILE.csv --client ID``: rows are case events, bad ones reported by line,
good ones kept, a second import changes nothing; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from gateway.cli.progress import ProgressBar
from gateway.services.event_import import import_events
from gateway.store.models import cases, crm_phone_numbers, events, messages
from tests.store.test_citizen_data import run

HEADER = "id,type,case.folio,case.category,case.status,case.progress,citizen.msisdn,citizen.language,"
CSV = (
    HEADER
    + """area.zones,notice.text
e1,case.received,MH-1,Fuga de agua,,,55 1234 5678,es,,
e2,case.status_changed,MH-1,,En proceso,40,55 1234 5678,,,
e3,case.status_changed,MH-2,,,,55 1234 5679,,,
e4,case.received,MH-3,,,,12,,,
e5,notice,,,,,,,"Popotla; 11560",Jornada de vacunación el sábado
e6,notice,,,,,,,Narnia,Aviso
e1,case.received,MH-9,,,,55 1234 5678,,,
e7,case.resolved,MH-1,,,abc,55 1234 5678,,,
e8,case.closed,MH-1,,,,55 1234 5678,,,,extra
"""
)


def count(db, table) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


async def test_rows_become_events_bad_ones_by_line_and_a_reimport_changes_nothing(tmp_path, db, intake):
    path = tmp_path / "export.csv"
    path.write_text(CSV, encoding="utf-8")
    stream = io.StringIO()
    report = await import_events(intake, "cesac", path, chunk_rows=3, progress=ProgressBar(stream))
    assert report.rows == 9 and report.accepted == 3
    assert [line for line, _ in report.bad] == [4, 5, 7, 8, 9, 10]
    reasons = dict(report.bad)
    assert reasons[4].startswith("case.status: required for case.status_changed")
    assert reasons[5].startswith("citizen.msisdn: ")
    assert reasons[7].startswith("area.zones[0]: ")
    assert "idempotency key reused with a different body" in reasons[8]
    assert reasons[9].startswith("case.progress: ")
    assert reasons[10] == "11 fields, the header has 10"
    assert report.messages == 2 and report.broadcasts == 1
    with db.engine.connect() as conn:
        case = conn.execute(select(cases)).mappings().one()
    assert (case["folio"], case["category"], case["status"], case["progress"]) == (
        "MH-1",
        "Fuga de agua",
        "En proceso",
        40,
    )
    assert "100.0%" in stream.getvalue()
    assert "line 4: case.status" in report.bad_rows()

    again = await import_events(intake, "cesac", path)
    assert again.accepted == 0 and again.already == 3 and len(again.bad) == 6
    assert "nothing changed" in again.summary()
    assert count(db, events) == 3 and count(db, messages) == 2


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("id,type,case.folio,citizen.phone\n", "unknown column(s) citizen.phone"),
        ("type,case.folio\n", "no id column"),
        ("id,type,id\n", "column(s) id given twice"),
        ("", "empty file"),
    ],
)
async def test_a_file_that_cannot_be_imported_at_all(tmp_path, intake, header, message):
    path = tmp_path / "bad.csv"
    path.write_text(header, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)):
        await import_events(intake, "cesac", path)


@pytest.fixture
def config(tmp_path, db_url):
    path = tmp_path / "smsgw.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n\n[[crm_clients]]\nid = "cesac"\nsecret_env = "SMSGW_UNSET_SECRET"\n',
        encoding="utf-8",
    )
    return str(path)


def test_the_command(tmp_path, config, db, capsys):
    path = tmp_path / "export.csv"
    path.write_text(CSV, encoding="utf-8")
    code, out, err = run(capsys, "events", "import", str(path), "--client", "cesac", "--config", config)
    assert code == 1
    assert "line 5: citizen.msisdn" in err and "100.0%" in err
    assert "9 rows read" in out and "3 good, 6 bad" in out and "events accepted: 3" in out
    code, out, err = run(
        capsys, "events", "import", str(path), "--client", "cesac", "--config", config, "--quiet"
    )
    assert code == 1 and "nothing changed" in out and "%" not in err
    code, out, err = run(capsys, "events", "import", str(path), "--client", "nobody", "--config", config)
    assert code == 2 and "unknown CRM client 'nobody'" in err
    assert count(db, events) == 3


def test_the_phone_directory_command(tmp_path, config, db, capsys):
    path = tmp_path / "phones.csv"
    path.write_text(
        "key,msisdn\nACC-1,55 1234 5678\nACC-2,123\n,5512345678\nACC-1,5587654321\n", encoding="utf-8"
    )
    code, out, err = run(
        capsys, "crm", "phones", "import", str(path), "--client", "cesac", "--config", config
    )
    assert code == 1 and "line 3: msisdn: " in err and "line 4: expected key,msisdn" in err
    assert "numbers added: 1" in out
    with db.engine.connect() as conn:
        assert conn.execute(select(crm_phone_numbers.c.key, crm_phone_numbers.c.msisdn)).all() == [
            ("ACC-1", "+525587654321")  # the last number given for a key wins
        ]
    code, out, _ = run(capsys, "crm", "phones", "import", str(path), "--client", "cesac", "--config", config)
    assert "nothing changed" in out and count(db, crm_phone_numbers) == 1
