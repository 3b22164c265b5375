"""``smsgw subscribers import FILE.csv``: subscribers in bulk.

Columns ``msisdn,topics,zones,language`` (a header row; topics and zones separated by ``;``). The
same rules as the ALTA keyword: no topic = every topic, no zone = every zone, a zone is a colonia
name (accents and section numbering optional) or a postal code, a name that means several colonias
is refused with the choices. A bad row is reported with its line number and reason and the good
rows are kept. Numbers that opted out are not subscribed again (only the citizen can do that, with
ALTA / START): they are reported. Importing the same file twice changes nothing the second time.
Every change is in the consent ledger (channel ``import``, the file and line as raw text).

Speed (bench/import_subscribers.py): rows are validated in Python with caches (a zone text is
resolved once per file) and a fast path for numbers already written as ``+52XXXXXXXXXX`` or ten
digits, exactly as strict as :func:`gateway.domain.phone.normalize_msisdn` (the same
``phonenumbers`` metadata test, without parsing; anything else goes through normalize_msisdn);
then a chunk of rows (5,000) costs a handful of executemany statements and one commit.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.engine import Engine

from gateway import clock
from gateway.domain.catalog import TOPICS
from gateway.domain.keywords import topic_word, zone_or_problem
from gateway.domain.languages import parse_language
from gateway.domain.phone import InvalidNumber, _national_digits, normalize_msisdn
from gateway.domain.templates import DEFAULT_DIRECTORY, languages_in
from gateway.domain.zones import ZoneDirectory
from gateway.store import consent
from gateway.store.db import insert_ignoring_conflicts
from gateway.store.models import citizens, consent_events, subscriptions
from gateway.store.zones import sync_zones

CHUNK_ROWS = 5000
IN_CHUNK = 900  # values per IN (...) list
COLUMNS = ("msisdn", "topics", "zones", "language")
MAX_BAD_SHOWN = 100

Progress = Callable[[int, int], None]  # (lines done, lines in the file)


# --- numbers: a fast path exactly as strict as normalize_msisdn -------------------------------------


def _mx_type_check() -> Callable[[str], bool] | None:
    """phonenumbers' own type test (``_number_type_helper``) for ten national digits, with the
    patterns of its MX metadata compiled once: the test normalize_msisdn runs after parsing
    "+52" + the digits, and the same answer (tests/unit/test_import.py checks every 3-digit
    prefix against normalize_msisdn). None when the metadata cannot be read that way."""
    try:
        import phonenumbers

        metadata = phonenumbers.PhoneMetadata.metadata_for_region("MX")
    except Exception:  # pragma: no cover - depends on the phonenumbers version
        return None
    if metadata is None or metadata.national_prefix_for_parsing:  # parsing could change the digits
        return None  # pragma: no cover

    def matcher(desc) -> Callable[[str], bool] | None:  # None: matches nothing
        if desc is None or not desc.national_number_pattern:
            return None
        pattern = re.compile(desc.national_number_pattern)
        lengths = tuple(desc.possible_length or ())
        if lengths:
            return lambda national: len(national) in lengths and pattern.fullmatch(national) is not None
        return lambda national: pattern.fullmatch(national) is not None

    never = lambda national: False  # noqa: E731
    general = matcher(metadata.general_desc) or never
    kinds = (
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
    )
    excluded = [test for test in (matcher(getattr(metadata, k, None)) for k in kinds) if test is not None]
    fixed, mobile = matcher(metadata.fixed_line) or never, matcher(metadata.mobile) or never
    same = bool(metadata.same_mobile_and_fixed_line_pattern)

    def sms_capable(national: str) -> bool:  # MOBILE or FIXED_LINE_OR_MOBILE
        if not general(national) or any(test(national) for test in excluded):
            return False
        if fixed(national):
            return same or mobile(national)
        return not same and mobile(national)

    return sms_capable


_FAST_FORMS = re.compile(r"(?:\+52)?([2-9]\d{9})")
_is_sms_capable = _mx_type_check()


def normalize_fast(raw: str) -> str:
    """normalize_msisdn(raw), faster (raises InvalidNumber with normalize_msisdn's message).

    normalize_msisdn strips separators and the accepted prefixes, requires ten digits, then asks
    phonenumbers the type of "+52" + those digits; here the same stripping (the very function) and
    the same type test run without phonenumbers' parser. Anything the fast path does not accept is
    handed to normalize_msisdn, so the answer and the error are always its own."""
    if _is_sms_capable is not None:
        m = _FAST_FORMS.fullmatch(raw)
        if m is not None:
            national = m.group(1)
        else:
            try:
                national = _national_digits(raw)
            except (InvalidNumber, TypeError, AttributeError):
                return normalize_msisdn(raw)
        if len(national) == 10 and national.isdigit() and _is_sms_capable(national):
            return "+52" + national
    return normalize_msisdn(raw)


# --- the report -------------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportReport:
    path: str
    rows: int = 0  # data rows read
    good: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    opted_out: list[int] = field(default_factory=list)  # lines of numbers that opted out (skipped)
    every_zone: list[int] = field(default_factory=list)  # lines of good rows without zones
    rows_changed: int = 0  # good rows that added a citizen, a subscription or a language
    citizens_added: int = 0
    subscriptions_added: int = 0
    languages_changed: int = 0
    consent_events: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.citizens_added or self.subscriptions_added or self.languages_changed)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        lines = [
            f"{self.path}: {self.rows:,} rows read in {self.seconds:.2f} s "
            f"({self.rows_per_second:,.0f} rows/s); {self.good:,} good, {len(self.bad):,} bad"
            + (f", {len(self.opted_out):,} of opted-out numbers skipped" if self.opted_out else "")
        ]
        if self.changed:
            already = self.good - self.rows_changed
            lines.append(
                f"{self.rows_changed:,} good {_row_word(self.rows_changed)} changed something"
                + (f" ({already:,} already imported)" if already else "")
                + f": citizens added: {self.citizens_added:,}; "
                f"subscriptions added: {self.subscriptions_added:,}; "
                f"languages changed: {self.languages_changed:,}; consent events: {self.consent_events:,}"
            )
        elif self.rows == 0:
            lines.append("nothing changed: the file has no data rows")
        elif self.good == 0:
            lines.append("nothing changed: no row could be imported")
        else:
            lines.append("nothing changed: every good row was already imported")
        if self.every_zone:
            count = len(self.every_zone)
            lines.append(
                f"warning: subscribed to every zone of the borough (no zones given) on {count:,} "
                f"{_row_word(count)}: {_lines(self.every_zone)}"
            )
        if self.opted_out:
            lines.append(
                "opted-out numbers are not subscribed again (only the citizen can, by SMS): "
                f"{_lines(self.opted_out)}"
            )
        return "\n".join(lines)

    def bad_rows(self, limit: int = MAX_BAD_SHOWN) -> str:
        out = [f"line {line}: {reason}" for line, reason in self.bad[:limit]]
        if len(self.bad) > limit:
            out.append(f"… and {len(self.bad) - limit:,} more bad rows")
        return "\n".join(out)


def _row_word(n: int) -> str:
    return "row" if n == 1 else "rows"


def _lines(numbers: list[int], shown: int = 20) -> str:
    """[4, 7, 9] -> "lines 4, 7, 9" (the first ``shown``, then how many more)."""
    more = f" and {len(numbers) - shown:,} more" if len(numbers) > shown else ""
    return f"line{'s' if len(numbers) > 1 else ''} {', '.join(str(n) for n in numbers[:shown])}{more}"


# --- reading and validating -------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    line: int
    msisdn: str
    topics: tuple[str, ...]
    zone_ids: tuple[int, ...] | None  # None: every zone
    zone_names: tuple[str, ...] | None
    language: str | None
    raw: str


class _Validator:
    def __init__(self, directory: ZoneDirectory, zone_ids: dict[str, int], languages: Sequence[str]):
        self.directory = directory
        self.zone_ids = zone_ids
        self.languages = list(languages)
        self._languages: dict[str, tuple[str | None, str | None]] = {}  # as written -> (language, error)
        self._zones: dict[str, tuple[tuple[int, ...], tuple[str, ...]] | str] = {}
        self._topics: dict[str, tuple[str, ...] | str] = {}

    def topics(self, text: str) -> tuple[str, ...] | str:
        found = self._topics.get(text)
        if found is None:
            wanted: dict[str, None] = {}
            found = ()
            for word in (w.strip() for w in text.split(";")):
                if not word:
                    continue
                topic = topic_word(word)
                if topic is None:
                    found = f"topics: unknown topic {word!r}: expected {', '.join(TOPICS)} (empty: all)"
                    break
                wanted.update(dict.fromkeys(TOPICS if topic == "*" else (topic,)))
            else:
                found = tuple(wanted) or TOPICS
            self._topics[text] = found
        return found

    def zones(self, text: str) -> tuple[tuple[int, ...], tuple[str, ...]] | str | None:
        if not text.strip():
            return None
        found = self._zones.get(text)
        if found is None:
            ids: dict[int, str] = {}
            for i, part in enumerate(p.strip() for p in text.split(";")):
                if not part:
                    continue
                zones = zone_or_problem(self.directory, part)
                if isinstance(zones, str):
                    found = f"zones[{i}]: {zones}"
                    break
                ids.update((self.zone_ids[z.key], z.name) for z in zones)
            else:
                found = (tuple(ids), tuple(ids.values())) if ids else None
            if found is not None:
                self._zones[text] = found
        return found

    def language(self, text: str) -> str | None:
        """The row's language (None: keep the citizen's); raises ValueError naming the choices."""
        found = self._languages.get(text)
        if found is None:
            try:
                found = (parse_language(text, self.languages), None)
            except ValueError as exc:
                found = (None, f"language: {exc}")
            self._languages[text] = found
        language, error = found
        if error is not None:
            raise ValueError(error)
        return language


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
    return lines


def _rows(path: Path, validator: _Validator, report: ImportReport) -> Iterator[_Row]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty file (expected the header {','.join(COLUMNS)})") from None
        names = [h.strip().lower() for h in header]
        if "msisdn" not in names:
            raise ValueError(f"{path}: line 1: no msisdn column (expected the header {','.join(COLUMNS)})")
        unknown = [n for n in names if n not in COLUMNS]
        if unknown:
            raise ValueError(
                f"{path}: line 1: unknown column(s) {', '.join(unknown)}; expected {','.join(COLUMNS)}"
            )
        at = {name: names.index(name) for name in COLUMNS if name in names}
        i_msisdn = at["msisdn"]
        i_topics, i_zones, i_language = at.get("topics"), at.get("zones"), at.get("language")
        width = len(names)
        name = path.name
        for fields in reader:
            line = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            report.rows += 1
            if len(fields) > width:
                report.bad.append((line, f"{len(fields)} fields, the header has {width}"))
                continue
            fields += [""] * (width - len(fields))
            try:
                msisdn = normalize_fast(fields[i_msisdn].strip())
            except InvalidNumber as exc:
                report.bad.append((line, f"msisdn: {exc}"))
                continue
            topics = validator.topics(fields[i_topics]) if i_topics is not None else TOPICS
            if isinstance(topics, str):
                report.bad.append((line, topics))
                continue
            zones = validator.zones(fields[i_zones]) if i_zones is not None else None
            if isinstance(zones, str):
                report.bad.append((line, zones))
                continue
            try:
                language = validator.language(fields[i_language]) if i_language is not None else None
            except ValueError as exc:
                report.bad.append((line, str(exc)))
                continue
            yield _Row(
                line,
                msisdn,
                topics,
                zones[0] if zones else None,
                zones[1] if zones else None,
                language,
                f"{name}:{line}: {','.join(fields)}",
            )


def _chunks(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    chunk: list[_Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- writing ----------------------------------------------------------------------------------------


def _in_lists(values: list, size: int = IN_CHUNK) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class _Writer:
    """executemany of plain tuples. On SQLite straight to the driver with the values converted
    once by SQLAlchemy's own bind processors (its per-row parameter processing cost more than the
    inserts); elsewhere through SQLAlchemy Core."""

    def __init__(self, conn: Connection, now: datetime):
        self.conn = conn
        self.raw = conn.dialect.name == "sqlite"
        if self.raw:
            dialect = conn.dialect
            to_db = citizens.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
            self.now = to_db(now) if to_db else now
            self.json = consent_events.c.topics.type.dialect_impl(dialect).bind_processor(dialect) or (
                lambda v: v
            )
        else:
            self.now = now
            self.json = lambda v: v

    def insert(
        self, table, columns: tuple[str, ...], rows: list[tuple], ignore_conflicts: bool = True
    ) -> None:
        if not rows:
            return
        if self.raw:
            sql = (
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
            )
            self.conn.exec_driver_sql(sql, rows)
        else:
            stmt = insert_ignoring_conflicts(self.conn, table, None) if ignore_conflicts else insert(table)
            self.conn.execute(stmt, [dict(zip(columns, row, strict=True)) for row in rows])


def _citizens_of(conn: Connection, numbers: list[str]) -> Iterator[tuple[int, str, bool, str]]:
    c = citizens.c
    sqlite = conn.dialect.name == "sqlite"
    for part in _in_lists(numbers):
        if sqlite:  # the driver straight: SQLAlchemy's expanding IN costs more than the query
            rows = conn.exec_driver_sql(
                "SELECT id, msisdn, opted_out, language FROM citizens "
                f"WHERE msisdn IN ({', '.join('?' * len(part))})",
                tuple(part),
            )
        else:
            rows = conn.execute(select(c.id, c.msisdn, c.opted_out, c.language).where(c.msisdn.in_(part)))
        for cid, msisdn, opted_out, language in rows:
            yield cid, msisdn, bool(opted_out), language


def _apply_chunk(conn: Connection, rows: list[_Row], report: ImportReport, now: datetime) -> None:
    writer = _Writer(conn, now)
    numbers = list(dict.fromkeys(r.msisdn for r in rows))
    language_of: dict[str, str | None] = {}
    for r in rows:  # the last language given for a number wins
        if r.language or r.msisdn not in language_of:
            language_of[r.msisdn] = r.language
    known = {
        msisdn: (cid, opted_out, language) for cid, msisdn, opted_out, language in _citizens_of(conn, numbers)
    }
    new = [n for n in numbers if n not in known]
    if new:
        writer.insert(
            citizens,
            ("msisdn", "language", "opted_out", "created_at", "updated_at"),
            [(n, language_of[n] or "es", False, writer.now, writer.now) for n in new],
        )
        for cid, msisdn, opted_out, language in _citizens_of(conn, new):
            known[msisdn] = (cid, opted_out, language)
            report.citizens_added += 1
    relanguaged = [n for n, lang in language_of.items() if lang and known[n][2] != lang and not known[n][1]]
    changes = [{"cid": known[n][0], "lang": language_of[n]} for n in relanguaged]
    if changes:
        c = citizens.c
        conn.execute(
            update(citizens)
            .where(c.id == bindparam("cid"))
            .values(language=bindparam("lang"), updated_at=now),
            changes,
        )
        report.languages_changed += len(changes)
    created = set(new)  # citizens created just now have no subscription yet
    ids = [known[n][0] for n in numbers if not known[n][1] and n not in created]
    have: set[tuple[int, str, int | None]] = set()
    s = subscriptions.c
    for part in _in_lists(ids):
        have.update(
            (cid, topic, zone_id)
            for cid, topic, zone_id in conn.execute(
                select(s.citizen_id, s.topic, s.zone_id).where(s.citizen_id.in_(part))
            )
        )
    inserts: list[tuple] = []
    ledger: list[tuple] = []
    encoded: dict[tuple, object] = {}

    def json(value: tuple) -> object:  # a few distinct lists per file: each encoded once
        found = encoded.get(value)
        if found is None:
            found = encoded[value] = writer.json(list(value))
        return found

    news = created | set(relanguaged)  # numbers whose first row here changes their citizen
    for r in rows:
        cid, opted_out, _ = known[r.msisdn]
        if opted_out:
            report.opted_out.append(r.line)
            continue
        report.good += 1
        if r.zone_ids is None:
            report.every_zone.append(r.line)
        added: dict[str, None] = {}
        for topic in r.topics:
            for zone_id in r.zone_ids or (None,):
                key = (cid, topic, zone_id)
                if key not in have:
                    have.add(key)
                    inserts.append((cid, topic, zone_id, writer.now))
                    added[topic] = None
        if added or r.msisdn in news:
            news.discard(r.msisdn)  # a citizen or a language counts on the first row of the number
            report.rows_changed += 1
        if added:
            zones = json(r.zone_names) if r.zone_ids else None
            ledger.append(
                (cid, consent.SUBSCRIBE, consent.IMPORT, json(tuple(added)), zones, r.raw, writer.now)
            )
    writer.insert(subscriptions, ("citizen_id", "topic", "zone_id", "created_at"), inserts)
    report.subscriptions_added += len(inserts)
    writer.insert(
        consent_events,
        ("citizen_id", "action", "channel", "topics", "zones", "raw", "at"),
        ledger,
        ignore_conflicts=False,
    )
    report.consent_events += len(ledger)


def import_subscribers(
    engine: Engine,
    path: str | Path,
    directory: ZoneDirectory,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
    now: datetime | None = None,
    languages: Sequence[str] | None = None,
) -> ImportReport:
    """Import ``path`` into the database of ``engine``; one transaction per chunk of rows.
    ``languages``: those with templates (default: the bundled templates').
    Raises ValueError for a file that cannot be imported at all (no header, unknown columns)."""
    started = time.perf_counter()
    path = Path(path)
    now = now or clock.utcnow()
    report = ImportReport(str(path))
    total = max(_count_lines(path) - 1, 0)
    with engine.begin() as conn:
        zone_ids = sync_zones(conn, directory, now)
    validator = _Validator(directory, zone_ids, languages or languages_in(DEFAULT_DIRECTORY))
    if progress:
        progress(0, total)
    for chunk in _chunks(_rows(path, validator, report), chunk_rows):
        with engine.begin() as conn:
            _apply_chunk(conn, chunk, report, now)
        if progress:
            progress(chunk[-1].line - 1, total)
    if progress:
        progress(total, total)
    report.seconds = time.perf_counter() - started
    return report


class ProgressBar:
    """A plain-text bar on stderr: redrawn in place on a terminal, a line per 10 % otherwise."""

    def __init__(self, stream: io.TextIOBase | None = None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_decile = -1
        self._done = False

    def __call__(self, done: int, total: int) -> None:
        if self._done:
            return
        fraction = 1.0 if total <= 0 else min(done / total, 1.0)
        filled = round(fraction * self.width)
        bar = f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}%  {done:,}/{total:,} rows"
        if self.tty:
            self.stream.write("\r" + bar + ("\n" if fraction >= 1 else ""))
        else:
            decile = int(fraction * 10)
            if decile == self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(bar + "\n")
        self.stream.flush()
        self._done = fraction >= 1
