"""``smsgw crm phones import FILE.csv --client ID``: a CRM client's phone directory.

For CRMs that do not publish the citizen's number (Open311 does not): a CSV ``key,msisdn`` where
``key`` is the value of the request field named by the adapter's ``phone_lookup_field`` (an
account id, the request id…). A bad row is reported by line and the good ones are kept; the last
number given for a key wins; a second import of the same file changes nothing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from gateway import clock
from gateway.domain.phone import InvalidNumber, normalize_msisdn
from gateway.store.db import Database

from . import state

CHUNK_ROWS = 5000


@dataclass(slots=True)
class PhoneImportReport:
    path: str
    rows: int = 0
    added: int = 0
    changed: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        good = self.rows - len(self.bad)
        head = f"{self.path}: {self.rows:,} rows; {good:,} good, {len(self.bad):,} bad"
        if self.added or self.changed:
            return f"{head}\nnumbers added: {self.added:,}; numbers changed: {self.changed:,}"
        return f"{head}\nnothing changed: every good row was already imported"


def import_phone_numbers(db: Database, client_id: str, path: str | Path) -> PhoneImportReport:
    path = Path(path)
    report = PhoneImportReport(str(path))
    rows: list[tuple[str, str]] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if header != ["key", "msisdn"]:
            raise ValueError(f"{path}: line 1: expected the header key,msisdn")
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            report.rows += 1
            line = reader.line_num
            if len(cells) != 2 or not cells[0].strip():
                report.bad.append((line, "expected key,msisdn with a key"))
                continue
            try:
                rows.append((cells[0].strip()[:128], normalize_msisdn(cells[1])))
            except InvalidNumber as exc:
                report.bad.append((line, f"msisdn: {exc}"))
    now = clock.utcnow()
    for i in range(0, len(rows), CHUNK_ROWS):
        added, changed = db.transaction(state.save_phone_numbers, client_id, rows[i : i + CHUNK_ROWS], now)
        report.added += added
        report.changed += changed
    return report
