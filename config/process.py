"""The process's own sections: ``[gateway]`` (listening, time zone, logging, shutdown),
``[database]`` and ``[dashboard]``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from .base import Section

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_DB_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")


def parse_listen(value: str) -> tuple[str, int]:
    """'host:port' (or '[v6]:port') -> (host, port); raises ValueError."""
    host, sep, port = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port such as 127.0.0.1:8080, got {value!r}")
    return host, int(port)


class GatewaySettings(Section):
    listen: str = "127.0.0.1:8080"
    timezone: str = "America/Mexico_City"
    short_code: str = "30311"
    log_format: Literal["json", "console"] = "json"
    log_level: str = "info"
    max_body_bytes: int = Field(65536, gt=0)
    signature_tolerance_seconds: int = Field(300, gt=0)
    node_id: str | None = None
    shutdown_grace_seconds: float = Field(15, gt=0, le=600)  # SIGTERM: the process is gone within this
    # á í ó ú -> a i o u keeps Spanish texts in GSM-7 (half the cost of UCS-2); "full" maps all of
    # Unicode that has a GSM look-alike; "off" sends accents as written (UCS-2).
    transliteration: Literal["off", "accents", "full"] = "accents"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, v: str) -> str:
        parse_listen(v)
        return v.strip()

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}: expected an IANA name such as America/Mexico_City"
            ) from None
        return v

    @field_validator("short_code")
    @classmethod
    def _check_short_code(cls, v: str) -> str:
        if not re.fullmatch(r"\d{3,8}", v):
            raise ValueError(f"expected 3 to 8 digits, got {v!r}")
        return v

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, v: str) -> str:
        if v.lower() not in _LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}, got {v!r}")
        return v.lower()

    @property
    def host(self) -> str:
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_listen(self.listen)[1]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DatabaseSettings(Section):
    url: str = "sqlite:///var/smsgw.db"
    # PostgreSQL: the process's one pool (and as many database threads); each process also holds
    # one connection publishing wake-ups and, in the dispatch roles, one listening: pool_size + 2.
    # SQLite: one writer thread, whatever this says.
    pool_size: int = Field(8, ge=1, le=64)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        scheme, sep, _ = v.partition("://")
        if not sep or scheme.lower() not in _DB_SCHEMES:
            # never echo the URL: it may hold a password
            raise ValueError(
                f"unsupported database URL scheme {scheme if sep else '(none)'!r}: "
                "expected sqlite:///PATH, postgresql://… or postgresql+psycopg://…"
            )
        return v

    @property
    def is_sqlite(self) -> bool:
        return self.url.lower().startswith("sqlite:")

    @property
    def sqlite_path(self) -> Path | None:
        """The database file (relative to the current directory) or None (PostgreSQL, in-memory)."""
        if not self.is_sqlite:
            return None
        path = self.url.partition("://")[2]
        path = path[1:] if path.startswith("/") else path  # sqlite:///rel, sqlite:////abs
        path = path.split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the psycopg 3 driver made explicit (plain postgresql:// means psycopg2)."""
        scheme, _, rest = self.url.partition("://")
        if scheme.lower() == "postgresql":
            return "postgresql+psycopg://" + rest
        return self.url


class DashboardSettings(Section):
    """Operators' dashboard at /dashboard/: operators sign in with their own accounts
    (``smsgw operators add``); sessions, lockout and the audit log are in the database."""

    session_hours: float = Field(12, gt=0, le=24 * 30)  # a session ends this long after login
    idle_minutes: float = Field(30, gt=0)  # or after this long without a request
    max_failures: int = Field(5, ge=1)  # failed logins on one account name in the window lock it
    # one address (several operators behind one NAT) gets more room before it is locked
    max_failures_per_address: int = Field(20, ge=1)
    failure_window_minutes: float = Field(15, gt=0)
    lockout_minutes: float = Field(15, gt=0)
    secure_cookies: bool = False  # true behind a proxy that ends TLS: cookies only over HTTPS
    trust_forwarded_for: bool = False  # true behind a proxy: the client is its X-Forwarded-For

    @model_validator(mode="before")
    @classmethod
    def _basic_auth_is_gone(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"user", "password", "password_env"} & data.keys():
            raise ValueError(
                "the shared dashboard password is gone: remove user and password_env, and give each "
                "operator an account with `smsgw operators add NAME`"
            )
        return data
