"""What citizens and CRM files write: the keyword parser and zones as written, the import files'
rows (subscribers, case events) through their row models, and a CSV file's bytes.

Documented errors: none from the keyword parser (anything not understood is ``Intent.UNKNOWN``);
pydantic's ValidationError from the subscriber row model; EventInvalid from a case event's
validation and preparation; ValueError (UnicodeDecodeError is one) for a file that cannot be read
at all; every readable row is good or reported bad with its line.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.domain.catalog import REQUIRED_FIELDS, TOPICS
from gateway.domain.composer import Composer
from gateway.domain.events import EVENT_FIELDS, EventInvalid, parse_event
from gateway.domain.keywords import (
    Intent,
    Request,
    looks_like_auto_reply,
    parse,
    resolve_zones,
    zone_or_problem,
)
from gateway.domain.notices import NoticePolicy
from gateway.domain.subscriptions import Catalogue, SubscriberRow
from gateway.domain.templates import TemplateRenderer
from gateway.domain.zones import load_zones
from gateway.services.csv_files import CsvFile, FileReport
from gateway.services.event_import import _payload

from .registry import Property

ZONES = load_zones()
CATALOGUE = Catalogue(ZONES, ("es", "en"))
POLICY = NoticePolicy(Composer(TemplateRenderer(ZoneInfo("America/Mexico_City"), "30311")))
NOW = datetime(2026, 12, 1, 16, 0)

KEYWORDS = ["ALTA", "BAJA", "AYUDA", "ESTADO", "SI", "NO", "START", "STOP", "HELP", "INFO", "alta agua"]
ZONE_WORDS = ["Anzures", "Polanco", "11590", "Granada", "Sección", "V", "col.", "y", ",", ";", "Pensil"]
sms_texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(KEYWORDS + ZONE_WORDS + list(TOPICS)) | st.text(max_size=8), max_size=25).map(
        " ".join
    ),
)


def keyword_parser(text: str) -> None:
    request = parse(text)
    assert isinstance(request, Request) and isinstance(request.intent, Intent)
    assert all(isinstance(z, str) and z for z in request.zones)
    assert request.topic is None or request.topic in TOPICS or request.topic == "*"
    isinstance(looks_like_auto_reply(text), bool)
    if request.zones:
        resolution = resolve_zones(ZONES, request.zones)
        assert set(resolution.unknown) <= set(request.zones) or resolution.unknown
    found = zone_or_problem(ZONES, text)
    assert isinstance(found, (str, list))


cells = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["5512345678", "+52 1 55 1234 5678", "AGUA;VIAL", "Anzures; 11560", "es", "en", "", ";;"]
    ),
)


def subscriber_row(row: tuple[str, str, str, str]) -> None:
    msisdn, topics, zones, language = row
    data = {"msisdn": msisdn.strip(), "topics": topics, "zones": zones, "language": language}
    try:
        parsed = CATALOGUE.validate(SubscriberRow, data)
    except ValidationError:
        return
    assert parsed.msisdn.startswith("+52") and set(parsed.topics) <= set(TOPICS)


FIELD_NAMES = list(EVENT_FIELDS)
moments = st.builds(
    lambda moment, hours: moment.replace(tzinfo=timezone(timedelta(hours=hours))).isoformat(),
    st.datetimes(),
    st.integers(-14, 14),
)
event_values = st.one_of(
    st.text(max_size=30),
    moments,
    st.sampled_from(
        [
            "case.received",
            "water.outage",
            "emergency.alert",
            "appointment.scheduled",
            "5512345678",
            "2030-12-01T08:00:00-06:00",
            "2030-12-01",
            "0001-01-01T00:00:00+14:00",  # before the year 1 in UTC
            "9999-12-31T23:59:59-14:00",  # after 9999 in UTC
            "50",
            "-1",
            "Anzures;Polanco",
            "emergency",
            "es",
        ]
    ),
)
# valid rows of each kind, then some of their cells changed: most reach the preparation too
VALID_ROWS = [
    {"id": "c-1", "type": "case.received", "case.folio": "MH-1", "citizen.msisdn": "5512345678"},
    {"id": "a-1", "type": "appointment.scheduled", "case.folio": "MH-1", "citizen.msisdn": "5512345678",
     "case.appointment.at": "2030-12-03T10:30:00-06:00"},
    {"id": "w-1", "type": "water.outage", "area.zones": "Anzures",
     "notice.starts_at": "2030-12-01T08:00:00-06:00", "notice.ends_at": "2030-12-01T18:00:00-06:00"},
    {"id": "e-1", "type": "emergency.alert", "notice.text": "Simulacro", "priority": "emergency"},
]  # fmt: skip
event_rows = st.builds(
    lambda base, changes: {**base, **changes},
    st.sampled_from(VALID_ROWS),
    st.lists(st.tuples(st.sampled_from(FIELD_NAMES), event_values), max_size=4).map(dict),
)


def event_row(row: dict[str, str]) -> None:
    names, values = list(row), list(row.values())
    payload = _payload(names, values)
    try:
        event = parse_event(payload, REQUIRED_FIELDS)
        POLICY.prepare("cesac", event, payload, NOW)
    except EventInvalid as exc:
        assert exc.errors and all(isinstance(f, str) and isinstance(r, str) for f, r in exc.errors)


csv_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.lists(cells, max_size=6).map(",".join), max_size=8).map(
        lambda rows: "\n".join(rows).encode()
    ),
    st.text(max_size=300).map(lambda t: ("msisdn,topics\n" + t).encode("utf-8", "surrogatepass")),
)


def csv_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(data)
        report = FileReport(str(path))
        try:
            with CsvFile(path, report, "a header") as file:
                width = len(file.header)
                rows = list(file.rows())
        except ValueError:  # not UTF-8, or no header at all
            return
        assert all(len(cells) == width for _, cells in rows)
        lines = [line for line, _ in rows] + [line for line, _ in report.bad]
        assert len(lines) == report.rows and len(set(lines)) == len(lines)


PROPERTIES = [
    Property("keyword parser", sms_texts, keyword_parser),
    Property("subscriber rows", st.tuples(cells, cells, cells, cells), subscriber_row),
    Property("event rows", event_rows, event_row),
    Property("csv files", csv_bytes, csv_file),
]
