"""structlog set-up: JSON lines or console output, stdlib logging routed through it, phone numbers masked.

Every string in an event (the event text, values, nested dicts and lists, rendered exceptions) and
every stdlib record's message passes through :func:`mask_phone_numbers`, so no log line carries a
citizen's full number.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["configure_logging", "get_logger", "mask_phone_numbers", "mask_processor"]

# A run of digits (10+ counted by _mask_match) with single spaces, dashes or parentheses inside,
# optionally after '+' or a URL-encoded '+'. Not glued to a word (UUIDs, hex, folios such as
# MH-2026-004512) and not a date running into a time ("2026-11-29 10:00").
_PHONE_RE = re.compile(
    r"(?<![\w+])(?<!\w-)"
    r"(?:\+|%2[Bb])?\(?\d(?:[ ()\-]{0,2}\d)*"
    r"(?!\w)(?!-\w)(?!:\d)"
)
_MIN_DIGITS = 10
_HANDLER_FLAG = "_smsgw_handler"
# Chatty libraries: kept at WARNING unless the level is debug (the scheduler runs jobs twice a
# second; SQLAlchemy echoes rows).
_CHATTY_LOGGERS = ("apscheduler", "sqlalchemy")
# Never below INFO: smpplib's debug lines are PDU hex dumps, whose numbers cannot be masked.
_HEX_DUMP_LOGGERS = ("smpp", "smpplib")
_PASSTHROUGH_KEYS = frozenset({"exc_info", "stack_info"})


def _mask_match(m: re.Match[str]) -> str:
    text = m.group(0)
    plus = "+" if text.startswith("+") else text[:3] if text[:3] in ("%2B", "%2b") else ""
    body = text[len(plus) :]
    digits = sum(c.isdigit() for c in body)
    if digits < _MIN_DIGITS:
        return text
    bare = re.sub(r"\D", "", body)
    # the country code tells nothing about the citizen: +52 / 52 (12-13 digit SMPP form) is kept
    keep_head = 2 if bare.startswith("52") and (plus or len(bare) in (12, 13)) else 0
    out: list[str] = [plus]
    seen = 0
    for c in body:
        if c.isdigit():
            seen += 1
            out.append(c if seen <= keep_head or seen > digits - 4 else "*")
        else:
            out.append(c)
    return "".join(out)


def mask_phone_numbers(text: str) -> str:
    """Mask every phone-like run (10+ digits), keeping the last 4: "+525512345678" -> "+52******5678"."""
    if not text or sum(c.isdigit() for c in text) < _MIN_DIGITS:
        return text
    return _PHONE_RE.sub(_mask_match, text)


def _looks_like_mx_int(value: int) -> bool:
    s = str(abs(value))
    return (
        (len(s) == 10 and s[0] in "23456789")
        or (len(s) == 12 and s.startswith("52"))
        or (len(s) == 13 and s.startswith("521"))
    )


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phone_numbers(value)
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return mask_phone_numbers(str(value)) if _looks_like_mx_int(value) else value
    if isinstance(value, dict):
        return {_mask_value(k): _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(v) for v in value]
    # anything else would be rendered through str()/repr() after us: render and mask it now
    return mask_phone_numbers(str(value))


def mask_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: masks phone numbers in every value of the event dict, recursively."""
    return {k: v if k in _PASSTHROUGH_KEYS else _mask_value(v) for k, v in event_dict.items()}


class _MaskedOutput:
    """Wraps a renderer and masks its rendered text too (catches console-formatted tracebacks)."""

    def __init__(self, renderer: Callable[..., Any]) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        return mask_phone_numbers(str(self._renderer(logger, method, event_dict)))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at emit time (works under pytest capture and redirection)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}: expected debug, info, warning, error or critical")
    return number


def configure_logging(fmt: str = "json", level: str = "info", *, stream: TextIO | None = None) -> None:
    """Set up structlog and the stdlib root logger; safe to call again (replaces the previous set-up).

    ``fmt`` is "json" (one object per line: timestamp ISO UTC, level, event, logger, …) or "console".
    Output goes to ``stream``, default sys.stderr (looked up at each write).
    """
    if fmt not in ("json", "console"):
        raise ValueError(f"unknown log format {fmt!r}: expected json or console")
    number = _level_number(level)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if fmt == "json":
        tail: list[Processor] = [structlog.processors.format_exc_info, mask_processor]
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        out = stream if stream is not None else sys.stderr
        colors = bool(getattr(out, "isatty", lambda: False)())
        tail = [mask_processor]
        renderer = _MaskedOutput(structlog.dev.ConsoleRenderer(colors=colors))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(ignore_frame_names=[__name__]),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.processors.StackInfoRenderer()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
    )
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_FLAG, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(number if number <= logging.DEBUG else max(number, logging.WARNING))
    for name in _HEX_DUMP_LOGGERS:
        logging.getLogger(name).setLevel(max(number, logging.INFO))
    logging.captureWarnings(True)  # SQLAlchemy and other warnings.warn() -> "py.warnings" logger


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger backed by the stdlib logger ``name`` (default: the caller's module)."""
    return structlog.stdlib.get_logger(name) if name else structlog.stdlib.get_logger()
