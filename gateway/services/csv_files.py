"""What the file imports share: reading a CSV with a header, and reporting rows by line.

A bad row is reported with its line number and reason and the good rows are kept; blank lines are
skipped; a row with more fields than the header is bad; shorter rows are padded with empty cells; a
row the CSV reader refuses (a field over its limit of 128 KiB, say: an unclosed quote swallowing
the rest of the file) is bad and reading goes on after it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar

MAX_BAD_SHOWN = 100

Progress = Callable[[int, int], None]  # (lines done, lines in the file)
T = TypeVar("T")


@dataclass(slots=True)
class FileReport:
    path: str
    rows: int = 0  # data rows read
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def bad_rows(self, limit: int = MAX_BAD_SHOWN) -> str:
        return bad_rows(self.bad, limit)


def bad_rows(bad: list[tuple[int, str]], limit: int = MAX_BAD_SHOWN) -> str:
    """``line N: reason`` lines, at most ``limit`` of them."""
    out = [f"line {line}: {reason}" for line, reason in bad[:limit]]
    if len(bad) > limit:
        out.append(f"… and {len(bad) - limit:,} more bad rows")
    return "\n".join(out)


def count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
    return lines


def line_list(numbers: list[int], shown: int = 20) -> str:
    """[4, 7, 9] -> "lines 4, 7, 9" (the first ``shown``, then how many more)."""
    more = f" and {len(numbers) - shown:,} more" if len(numbers) > shown else ""
    return f"line{'s' if len(numbers) > 1 else ''} {', '.join(str(n) for n in numbers[:shown])}{more}"


class CsvFile:
    """A UTF-8 CSV file (a BOM allowed) opened for its ``header`` and then its data :meth:`rows`.

    ``expected`` completes "empty file (expected …)" for a file without even a header."""

    def __init__(self, path: Path, report: FileReport, expected: str):
        self.path = path
        self.report = report
        self.expected = expected
        self.header: list[str] = []
        self._file: TextIO | None = None
        self._reader = None

    def __enter__(self) -> CsvFile:
        self._file = self.path.open(encoding="utf-8-sig", newline="")
        self._reader = csv.reader(self._file)
        try:
            self.header = next(self._reader)
        except StopIteration:
            self._file.close()
            raise ValueError(f"{self.path}: empty file (expected {self.expected})") from None
        except csv.Error as exc:
            self._file.close()
            raise ValueError(f"{self.path}: line 1: unreadable header ({exc})") from None
        except BaseException:
            self._file.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line, cells) of every data row, counted in the report."""
        reader, report, width = self._reader, self.report, len(self.header)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                report.rows += 1
                report.bad.append((reader.line_num, f"unreadable row: {exc}"))
                continue
            line = reader.line_num
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            report.rows += 1
            if len(cells) > width:
                report.bad.append((line, f"{len(cells)} fields, the header has {width}"))
                continue
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            yield line, cells


def chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
