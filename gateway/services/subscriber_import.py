"""``smsgw subscribers import FILE.csv``: subscribers in bulk.

Columns ``msisdn,topics,zones,language`` (a header row; topics and zones separated by ``;``). Each
row is a :class:`gateway.domain.subscriptions.SubscriberRow`, so the rules are the ALTA keyword's
and the API's: no topic = every topic, no zone = every zone, a zone is a colonia name (accents and
section numbering optional) or a postal code, a name that means several colonias is refused with
the choices. A bad row is reported with its line number and reason and the good rows are kept.
Numbers that opted out are not subscribed again (only the citizen can do that, with ALTA / START):
they are reported. Importing the same file twice changes nothing the second time. Every change is
in the consent ledger (channel ``import``, the file and line as raw text).

Speed (bench/import_subscribers.py): a zone or a topic list as written is resolved once, numbers
take :func:`gateway.domain.phone.normalize_fast`; a chunk of rows (5,000) is written by the
subscription service set-based, in a handful of executemany statements and one commit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from gateway import clock
from gateway.domain.fields import field_errors
from gateway.domain.subscriptions import SubscriberRow
from gateway.store.zones import sync_zones

from .csv_files import CsvFile, FileReport, Progress, chunks, count_lines, line_list
from .subscriptions import Imported, ImportRow, SubscriptionService

CHUNK_ROWS = 5000
COLUMNS = ("msisdn", "topics", "zones", "language")
_HEADER = f"the header {','.join(COLUMNS)}"


@dataclass(slots=True)
class ImportReport(FileReport):
    good: int = 0
    opted_out: list[int] = field(default_factory=list)  # lines of numbers that opted out (skipped)
    every_zone: list[int] = field(default_factory=list)  # lines of good rows without zones
    rows_changed: int = 0  # good rows that added a citizen, a subscription or a language
    citizens_added: int = 0
    subscriptions_added: int = 0
    languages_changed: int = 0
    consent_events: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.citizens_added or self.subscriptions_added or self.languages_changed)

    def add(self, done: Imported) -> None:
        self.good += len(done.applied)
        self.every_zone += [r.line for r in done.applied if not r.zones]
        self.opted_out += done.opted_out
        self.rows_changed += done.rows_changed
        self.citizens_added += done.citizens_added
        self.subscriptions_added += done.subscriptions_added
        self.languages_changed += done.languages_changed
        self.consent_events += done.consent_events

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
                f"{_row_word(count)}: {line_list(self.every_zone)}"
            )
        if self.opted_out:
            lines.append(
                "opted-out numbers are not subscribed again (only the citizen can, by SMS): "
                f"{line_list(self.opted_out)}"
            )
        return "\n".join(lines)


def _row_word(n: int) -> str:
    return "row" if n == 1 else "rows"


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    """Column name -> index; raises ValueError for a header that cannot be imported."""
    names = [h.strip().lower() for h in header]
    if "msisdn" not in names:
        raise ValueError(f"{path}: line 1: no msisdn column (expected {_HEADER})")
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise ValueError(
            f"{path}: line 1: unknown column(s) {', '.join(unknown)}; expected {','.join(COLUMNS)}"
        )
    return {name: names.index(name) for name in COLUMNS if name in names}


def _valid_rows(file: CsvFile, service: SubscriptionService, report: ImportReport) -> Iterator[ImportRow]:
    at = _columns(file.path, file.header)
    i_msisdn = at.pop("msisdn")
    catalogue, name = service.catalogue, file.path.name
    for line, cells in file.rows():
        data = {column: cells[i] for column, i in at.items()}
        data["msisdn"] = cells[i_msisdn].strip()
        try:
            row = catalogue.validate(SubscriberRow, data)
        except ValidationError as exc:
            report.bad.append((line, "; ".join(f"{f}: {why}" for f, why in field_errors(exc))))
            continue
        yield ImportRow.of(line, f"{name}:{line}: {','.join(cells)}", row)


def import_subscribers(
    service: SubscriptionService,
    engine: Engine,
    path: str | Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Import ``path`` into the database of ``engine``; one transaction per chunk of rows.
    Raises ValueError for a file that cannot be imported at all (no header, unknown columns)."""
    started = time.perf_counter()
    path = Path(path)
    now = now or clock.utcnow()
    report = ImportReport(str(path))
    total = max(count_lines(path) - 1, 0)
    with engine.begin() as conn:
        zone_ids = sync_zones(conn, service.catalogue.zones, now)
    if progress:
        progress(0, total)
    with CsvFile(path, report, _HEADER) as file:
        for chunk in chunks(_valid_rows(file, service, report), chunk_rows):
            with engine.begin() as conn:
                report.add(service.import_rows(conn, chunk, zone_ids, now))
            if progress:
                progress(chunk[-1].line - 1, total)
    if progress:
        progress(total, total)
    report.seconds = time.perf_counter() - started
    return report
