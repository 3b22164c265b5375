"""The progress of a file import on stderr."""

from __future__ import annotations

import io
import sys


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
