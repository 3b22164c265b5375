"""``smsgw events import FILE.csv --client ID``: case events from a CRM's export file.

The header names the case event's fields by their dotted paths (``id,type,case.folio,case.status,
case.progress,citizen.msisdn,citizen.language,area.zones,notice.text,…``; every field of
:data:`gateway.domain.events.EVENT_FIELDS`); ``area.zones`` holds zones separated by ``;``; an
empty cell leaves the field out. Each row goes through the same intake as a posted event
(:class:`gateway.services.intake.IntakeService`), many rows at once so the intake's group commit
takes them in few transactions, in the file's order. A bad row is reported with its line number and
the field at fault and the good rows are kept; ids make a second import of the same file change
nothing (every row answers "already imported"); an id used again for a different event is a bad
row. Messages queued here are picked up by the running gateway's dispatcher (it polls the outbox),
broadcasts by its fan-out and reminders by its reminder service within a minute.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.domain.events import EVENT_FIELDS

from .csv_files import CsvFile, FileReport, Progress, count_lines
from .intake import IntakeResult, IntakeService

CHUNK_ROWS = 500


@dataclass(slots=True)
class EventImportReport(FileReport):
    accepted: int = 0
    already: int = 0  # ids imported (or posted) before: nothing changed
    messages: int = 0  # messages queued
    broadcasts: int = 0

    def summary(self) -> str:
        good = self.accepted + self.already
        lines = [
            f"{self.path}: {self.rows:,} rows read in {self.seconds:.2f} s "
            f"({self.rows_per_second:,.0f} rows/s); {good:,} good, {len(self.bad):,} bad"
        ]
        if self.accepted:
            lines.append(
                f"events accepted: {self.accepted:,}; messages queued: {self.messages:,}; "
                f"broadcasts: {self.broadcasts:,}; already imported: {self.already:,}"
            )
        else:
            lines.append("nothing changed: every good row was already imported")
        return "\n".join(lines)


def _payload(names: list[str], cells: list[str]) -> dict:
    payload: dict = {}
    for name, cell in zip(names, cells, strict=True):
        value = cell.strip()
        if not value:
            continue
        if EVENT_FIELDS[name] == "list":
            parts: object = [z.strip() for z in value.split(";") if z.strip()]
        elif EVENT_FIELDS[name] == "number" and value.lstrip("-").isdigit():
            parts = int(value)
        else:
            parts = value
        node = payload
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parts
    return payload


def _names(path: Path, header: list[str]) -> list[str]:
    """The columns: case event fields by dotted path; raises ValueError for a header that cannot
    be imported."""
    names = [h.strip() for h in header]
    unknown = [n for n in names if n not in EVENT_FIELDS]
    if unknown:
        raise ValueError(
            f"{path}: line 1: unknown column(s) {', '.join(unknown)}; the columns are the case "
            f"event's fields: {','.join(EVENT_FIELDS)}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{path}: line 1: column(s) {', '.join(repeated)} given twice")
    for required in ("id", "type"):
        if required not in names:
            raise ValueError(f"{path}: line 1: no {required} column")
    return names


def _reason(result: IntakeResult) -> str:
    return "; ".join(f"{name}: {why}" if name else why for name, why in result.errors)


async def import_events(
    service: IntakeService,
    client_id: str,
    path: str | Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> EventImportReport:
    """Import ``path``'s rows as ``client_id``'s events. Raises ValueError for a file that cannot
    be imported at all (no header, unknown columns)."""
    started = time.perf_counter()
    path = Path(path)
    report = EventImportReport(str(path))
    total = max(count_lines(path) - 1, 0)
    source = f"file:{path.name}"
    if progress:
        progress(0, total)
    chunk: list[tuple[int, dict]] = []

    async def flush() -> None:
        results = await asyncio.gather(*(service.accept(client_id, p, source=source) for _, p in chunk))
        for (line, _), result in zip(chunk, results, strict=True):
            if result.status == "accepted":
                report.accepted += 1
                report.messages += len(result.response.get("message_ids", []))
                report.broadcasts += 1 if result.response.get("broadcast_id") is not None else 0
            elif result.status == "duplicate":
                report.already += 1
            else:
                report.bad.append((line, _reason(result)))
        if progress:
            progress(chunk[-1][0] - 1, total)
        chunk.clear()

    with CsvFile(path, report, "a header such as id,type,case.folio,…") as file:
        names = _names(path, file.header)
        for line, cells in file.rows():
            chunk.append((line, _payload(names, cells)))
            if len(chunk) >= chunk_rows:
                await flush()
    if chunk:
        await flush()
    report.bad.sort()
    if progress:
        progress(total, total)
    report.seconds = time.perf_counter() - started
    return report
