"""Configuration: one TOML file, validated by pydantic, overridable from the environment.

``SMSGW_<SECTION>_<KEY>`` overrides a scalar of a table section (``SMSGW_DATABASE_URL``,
``SMSGW_DISPATCH_BATCH_SIZE``); ``SMSGW_CARRIERS_<NAME>_<KEY>`` and ``SMSGW_CRM_CLIENTS_<ID>_<KEY>``
override a scalar of one entry of ``[[carriers]]`` / ``[[crm_clients]]`` (``SMSGW_CARRIERS_TELCEL_HOST``).
Secrets never sit in the file: ``password_env`` / ``secret_env`` name the variable that holds them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .crm_adapters import CrmAdapterSettings, check_adapters

__all__ = [
    "DEFAULT_CONFIG",
    "DEMO_CONFIG",
    "CarrierSettings",
    "ConfigError",
    "CrmClientSettings",
    "DatabaseSettings",
    "DispatchSettings",
    "GatewaySettings",
    "RoutingSettings",
    "Settings",
    "format_validation_error",
    "load_settings",
    "parse_listen",
]

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"
DEMO_CONFIG = CONFIG_DIR / "demo.toml"

ENV_PREFIX = "SMSGW_"
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_DB_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")


class ConfigError(Exception):
    """A configuration problem; ``str(e)`` is one line: ``config error: <key path>: <what is wrong>``."""

    def __init__(self, message: str) -> None:
        message = " ".join(str(message).split())  # always one line
        if not message.startswith("config error: "):
            message = "config error: " + message
        super().__init__(message)


def parse_listen(value: str) -> tuple[str, int]:
    """'host:port' (or '[v6]:port') -> (host, port); raises ValueError."""
    host, sep, port = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port such as 127.0.0.1:8080, got {value!r}")
    return host, int(port)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _context_env(info: ValidationInfo) -> Mapping[str, str]:
    ctx = info.context or {}
    env = ctx.get("env")
    return os.environ if env is None else env


def _from_file(info: ValidationInfo) -> bool:
    return bool((info.context or {}).get("from_file"))


def _resolve_secret(name: str | None, info: ValidationInfo) -> str | None:
    """Check that the variable named by a ``*_env`` key is set; returns its value."""
    if name is None:
        return None
    if not name.strip():
        raise ValueError("must name an environment variable")
    env = _context_env(info)
    if name not in env:
        raise ValueError(f"environment variable {name} is not set")
    if not env[name]:
        raise ValueError(f"environment variable {name} is empty")
    return env[name]


class GatewaySettings(_Section):
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


class DatabaseSettings(_Section):
    url: str = "sqlite:///var/smsgw.db"

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


class CarrierSettings(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=32)  # stored with each part
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    system_id: str
    # password precedes password_env so the latter's validator can see an explicit password
    password: str = Field("", repr=False, exclude=True)
    password_env: str | None = None
    system_type: str = ""
    tps: float = Field(100, gt=0)
    window: int = Field(10, ge=1, le=1000)
    binds: int = Field(1, ge=1, le=32)
    # "transceiver": `binds` transceiver sessions; "transmitter_receiver": `binds` pairs of one
    # transmitter (submits) and one receiver (receipts, MO)
    bind_mode: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    enquire_link_seconds: float = Field(30, gt=0)
    response_timeout_seconds: float = Field(30, gt=0)
    reconnect_min_seconds: float = Field(1, gt=0)
    reconnect_max_seconds: float = Field(60, gt=0)
    source_addr_ton: int = Field(6, ge=0, le=255)
    source_addr_npi: int = Field(0, ge=0, le=255)
    dest_addr_ton: int = Field(1, ge=0, le=255)
    dest_addr_npi: int = Field(1, ge=0, le=255)
    concat: Literal["udh8", "udh16", "sar", "payload"] = "udh8"
    # issue 4: speed limit under throttling (AIMD), timeouts, failover
    min_tps: float = Field(1, gt=0)  # the rate never drops below this when the SMSC throttles
    throttle_decrease: float = Field(0.5, gt=0, lt=1)  # rate multiplied by this on ESME_RTHROTTLED/RMSGQFUL
    throttle_pause_seconds: float = Field(1, ge=0, le=60)  # and sending pauses this long
    recovery_per_second: float | None = Field(None, gt=0)  # additive recovery; default 2 % of tps (min 1)
    max_consecutive_timeouts: int = Field(3, ge=0)  # responses timed out in a row that reset the link
    failover_on: list[int | str] = Field(default_factory=lambda: ["ESME_RSUBMITFAIL"])  # routing errors
    # how receipts write the submit_sm_resp id: "auto" learns it from the first receipts that match
    # one way only; "same"; or in another base ("submit_decimal_receipt_hex", "submit_hex_receipt_decimal")
    receipt_ids: Literal["auto", "same", "submit_decimal_receipt_hex", "submit_hex_receipt_decimal"] = "auto"

    @field_validator("failover_on")
    @classmethod
    def _check_failover_on(cls, v: list[int | str]) -> list[int | str]:
        from smpp_client.errors import parse_status

        for item in v:
            parse_status(item)
        return v

    @field_validator("password", mode="before")
    @classmethod
    def _no_password_in_file(cls, v: Any, info: ValidationInfo) -> Any:
        if _from_file(info):
            raise ValueError(
                "passwords do not go in the configuration: set password_env to the name of the "
                "environment variable that holds it"
            )
        return v

    @field_validator("password_env")
    @classmethod
    def _check_password_env(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not info.data.get("password"):
            _resolve_secret(v, info)
        return v

    @model_validator(mode="after")
    def _fill_password(self, info: ValidationInfo) -> CarrierSettings:
        if self.password_env and not self.password:
            self.password = _resolve_secret(self.password_env, info) or ""
        if self.reconnect_min_seconds > self.reconnect_max_seconds:
            raise ValueError("reconnect_min_seconds must not exceed reconnect_max_seconds")
        return self


class CrmClientSettings(_Section):
    id: str = Field(min_length=1)
    secret: str = Field("", repr=False, exclude=True)
    secret_env: str
    callback_url: str | None = None

    @field_validator("secret", mode="before")
    @classmethod
    def _no_secret_in_file(cls, v: Any, info: ValidationInfo) -> Any:
        if _from_file(info):
            raise ValueError(
                "secrets do not go in the configuration: set secret_env to the name of the "
                "environment variable that holds it"
            )
        return v

    @field_validator("secret_env")
    @classmethod
    def _check_secret_env(cls, v: str, info: ValidationInfo) -> str:
        if not info.data.get("secret"):
            _resolve_secret(v, info)
        return v

    @field_validator("callback_url")
    @classmethod
    def _check_callback_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"https?://[^/\s]+", v):
            raise ValueError(f"expected an http:// or https:// URL, got {v!r}")
        return v

    @model_validator(mode="after")
    def _fill_secret(self, info: ValidationInfo) -> CrmClientSettings:
        if not self.secret:
            self.secret = _resolve_secret(self.secret_env, info) or ""
        return self


class DispatchSettings(_Section):
    batch_size: int = Field(500, ge=1)
    interval_seconds: float = Field(0.5, gt=0)
    lease_seconds: float = Field(120, gt=0)
    max_attempts: int = Field(10, ge=1)
    validity_hours: float = Field(24, gt=0)


# --- notices (issue 5): quiet hours, validity, templates, broadcasts, callbacks ---------------------


def _hh_mm(value: str) -> str:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
    if not m:
        raise ValueError(f"expected a time of day HH:MM such as 22:00, got {value!r}")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


class QuietHoursSettings(_Section):
    enabled: bool = True
    start: str = "22:00"  # city time; only emergencies are sent from start to end
    end: str = "07:00"

    @field_validator("start", "end")
    @classmethod
    def _check_time(cls, v: str) -> str:
        return _hh_mm(v)


class ValiditySettings(_Section):
    """Hours a message may wait to be submitted before it expires, by priority; by_type wins."""

    emergency_hours: float = Field(6, gt=0)
    high_hours: float = Field(12, gt=0)
    normal_hours: float | None = Field(None, gt=0)  # default: dispatch.validity_hours
    low_hours: float = Field(48, gt=0)
    by_type: dict[str, float] = Field(default_factory=lambda: {"traffic.alert": 2.0})


class TemplatesSettings(_Section):
    directory: str | None = None  # default: config/templates beside this file
    max_segments: int = Field(3, ge=1, le=10)  # templates that can render longer are refused at start-up


class NoticesSettings(_Section):
    enrolment: bool = True  # offer the alerts on the first message of a citizen's first case
    zones_file: str | None = None  # default: config/zones/miguel_hidalgo.csv
    # emergency.alert without zones: "subscribers" (every EMERGENCIA subscriber, any zone) or
    # "citizens" (every citizen known to the gateway who has not opted out)
    emergency_without_zones: Literal["subscribers", "citizens"] = "subscribers"
    fanout_chunk: int = Field(5000, ge=100, le=100_000)
    reminders: bool = True  # run appointment reminders in this process (one process per database)


class CallbacksSettings(_Section):
    timeout_seconds: float = Field(10, gt=0)
    max_attempts: int = Field(10, ge=1)
    backoff_seconds: float = Field(5, gt=0)  # first retry; doubles up to max_backoff_seconds
    max_backoff_seconds: float = Field(1800, gt=0)
    concurrency: int = Field(8, ge=1, le=100)


# --- citizens' replies (issue 6): keywords, loop guard --------------------------------------------


class RepliesSettings(_Section):
    city_phone: str = Field("55 5658 1111", pattern=r"^[0-9 +()*#.-]{3,20}$")  # in AYUDA, "not found"
    privacy_url: str = Field("", max_length=60)  # simplified privacy notice, named when subscribing
    max_per_day: int = Field(10, ge=1, le=1000)  # replies to one number in 24 hours, at most
    help_interval_minutes: float = Field(60, gt=0)  # unknown texts get the help text once per this
    duplicate_window_seconds: float = Field(120, ge=0)  # the same text again within this: a resend


# --- routing (issue 4): which carrier a message goes to --------------------------------------------


class PrefixRouteSettings(_Section):
    prefix: str = Field(pattern=r"^\+?\d{1,15}$")  # E.164 digits: "5255" is +52 55…
    carrier: str


class RoutingSettings(_Section):
    prefixes: list[PrefixRouteSettings] = Field(default_factory=list)  # longest prefix wins
    ported_numbers: str | None = None  # CSV file msisdn,carrier (ported numbers win over prefixes)
    ported_reload_seconds: float = Field(60, gt=0)  # the file is re-read when it changes
    weights: dict[str, float] = Field(default_factory=dict)  # traffic split when no rule matches
    failover: bool = True  # links down or a routing error: try the other carriers


class DashboardSettings(_Section):
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


class Settings(_Section):
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    carriers: list[CarrierSettings] = Field(default_factory=list)
    crm_clients: list[CrmClientSettings] = Field(default_factory=list)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    quiet_hours: QuietHoursSettings = Field(default_factory=QuietHoursSettings)
    validity: ValiditySettings = Field(default_factory=ValiditySettings)
    templates: TemplatesSettings = Field(default_factory=TemplatesSettings)
    notices: NoticesSettings = Field(default_factory=NoticesSettings)
    callbacks: CallbacksSettings = Field(default_factory=CallbacksSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)  # issue 4
    replies: RepliesSettings = Field(default_factory=RepliesSettings)  # issue 6
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    crm_adapters: list[CrmAdapterSettings] = Field(default_factory=list)  # config/crm_adapters.py
    simulator: dict[str, Any] = Field(default_factory=dict)  # validated by the simulator package
    source_path: Path | None = None

    @field_validator("carriers")
    @classmethod
    def _unique_carriers(cls, v: list[CarrierSettings]) -> list[CarrierSettings]:
        _check_unique([c.name for c in v], "carrier name", "carriers")
        return v

    @field_validator("crm_clients")
    @classmethod
    def _unique_clients(cls, v: list[CrmClientSettings]) -> list[CrmClientSettings]:
        _check_unique([c.id for c in v], "crm client id", "crm_clients")
        return v

    @model_validator(mode="after")
    def _routing_carriers(self) -> Settings:
        names = {c.name for c in self.carriers}
        for i, rule in enumerate(self.routing.prefixes):
            if rule.carrier not in names:
                raise ValueError(f"routing.prefixes[{i}].carrier: unknown carrier {rule.carrier!r}")
        for name, weight in self.routing.weights.items():
            if name not in names:
                raise ValueError(f"routing.weights: unknown carrier {name!r}")
            if weight < 0:
                raise ValueError(f"routing.weights.{name}: must not be negative")
        return self

    @model_validator(mode="after")
    def _crm_adapters(self) -> Settings:
        check_adapters(self.crm_adapters, {c.id for c in self.crm_clients})
        return self

    def carrier(self, name: str) -> CarrierSettings | None:
        return next((c for c in self.carriers if c.name == name), None)

    def crm_client(self, client_id: str) -> CrmClientSettings | None:
        return next((c for c in self.crm_clients if c.id == client_id), None)


def _check_unique(values: list[str], what: str, section: str) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r} ({section}[{seen[value]}] and {section}[{i}])")
        seen[value] = i


# --- errors -------------------------------------------------------------------------------------

_FRIENDLY = {"extra_forbidden": "unknown key", "missing": "required key is missing"}


def _key_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def format_validation_error(
    exc: ValidationError,
    prefix: str = "",
    origins: Mapping[tuple[int | str, ...], str] | None = None,
) -> str:
    """One line for the first error: ``<key path>: <what is wrong>`` (``carriers[0].port: …``).

    ``prefix`` is prepended to the key path (``"simulator"`` -> ``simulator.carriers[0].port``);
    ``origins`` maps a loc to the environment variable that supplied it, named in the message.
    Wrap it in ConfigError for the ``config error: `` prefix.
    """
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return f"{prefix or '(top level)'}: {exc}"
    err = errors[0]
    loc = tuple(err["loc"])
    msg = _FRIENDLY.get(err["type"], err["msg"])
    if err["type"] == "value_error" and "error" in err.get("ctx", {}):
        msg = str(err["ctx"]["error"])
    if not loc and re.match(r"[a-z_]+(\[\d+\])?[\w.\[\]]*: ", msg):
        return " ".join(msg.split())  # a whole-file rule naming its key itself (routing, crm_adapters)
    if origins:
        for n in range(len(loc), 0, -1):
            if loc[:n] in origins:
                msg += f" (from environment variable {origins[loc[:n]]})"
                break
    return " ".join(f"{_key_path(loc, prefix)}: {msg}".split())


# --- loading ------------------------------------------------------------------------------------

_TABLE_SECTIONS = ("gateway", "database", "dispatch", "simulator")
_TABLE_SECTIONS += ("quiet_hours", "validity", "templates", "notices", "callbacks")  # issue 5
_TABLE_SECTIONS += ("routing",)  # issue 4
_TABLE_SECTIONS += ("replies",)  # issue 6
_TABLE_SECTIONS += ("dashboard",)
_LIST_SECTIONS = {"carriers": "name", "crm_clients": "id", "crm_adapters": "name"}


def env_token(value: str) -> str:
    """How a name reads in a variable name: ``"tel-cel"`` -> ``"TEL_CEL"``."""
    return re.sub(r"[^A-Z0-9]", "_", value.upper())


# lists of tables inside a table section, their entries named like [[carriers]]'s
_NESTED_LISTS = {"simulator": {"carriers": "name"}}


def _set_scalar(table: dict[str, Any], key: str, value: str, var: str, where: str) -> None:
    if isinstance(table.get(key), dict | list):
        raise ConfigError(f"{where}.{key}: environment variable {var} cannot replace a table or an array")
    table[key] = value


def _entry(items: list, id_key: str, tail: str) -> tuple[int, str] | None:
    """(index, key) of the entry of ``items`` whose name starts ``tail`` ("TELCEL_PORT" -> the
    entry named telcel, "port"); the longest matching name wins."""
    best: tuple[int, int, str] | None = None
    for i, item in enumerate(items):
        ident = item.get(id_key) if isinstance(item, dict) else None
        if not isinstance(ident, str) or not ident:
            continue
        token = env_token(ident) + "_"
        if tail.startswith(token) and len(tail) > len(token) and (best is None or len(token) > best[0]):
            best = (len(token), i, tail[len(token) :].lower())
    return None if best is None else (best[1], best[2])


def _nested(section: str, table: dict[str, Any], rest: str) -> tuple[str, int, str] | None:
    """(list, index, key) when ``rest`` (after SMSGW_<SECTION>_) names a key of one entry of a
    list inside the table: SIMULATOR_CARRIERS_TELCEL_PORT -> ("carriers", 0, "port")."""
    for list_key, id_key in _NESTED_LISTS.get(section, {}).items():
        token = list_key.upper() + "_"
        if not rest.startswith(token):
            continue
        if list_key not in table and section == "simulator":
            from simulator.settings import default_carriers_table

            table[list_key] = default_carriers_table()  # the defaults, so their keys can be overridden
        items = table.get(list_key)
        found = _entry(items, id_key, rest[len(token) :]) if isinstance(items, list) else None
        if found is not None:
            return list_key, *found
    return None


def _apply_env(
    raw: dict[str, Any], env: Mapping[str, str], sections: Sequence[str] | None = None
) -> dict[tuple[int | str, ...], str]:
    """Apply SMSGW_* overrides in place (only those of ``sections`` when given); returns
    {loc: variable} for error messages."""
    origins: dict[tuple[int | str, ...], str] = {}
    tables = _TABLE_SECTIONS if sections is None else tuple(s for s in _TABLE_SECTIONS if s in sections)
    lists = {k: v for k, v in _LIST_SECTIONS.items() if sections is None or k in sections}
    # longest section name first so SMSGW_CRM_CLIENTS_… never reads as a section "crm"
    for var in sorted(v for v in env if v.startswith(ENV_PREFIX)):
        rest = var[len(ENV_PREFIX) :]
        for section in sorted(tables, key=len, reverse=True):
            token = section.upper() + "_"
            if rest.startswith(token) and len(rest) > len(token):
                table = raw.setdefault(section, {})
                if isinstance(table, dict):
                    nested = _nested(section, table, rest[len(token) :])
                    if nested is not None:
                        list_key, i, key = nested
                        _set_scalar(table[list_key][i], key, env[var], var, f"{section}.{list_key}[{i}]")
                        origins[(section, list_key, i, key)] = var
                    else:
                        key = rest[len(token) :].lower()
                        _set_scalar(table, key, env[var], var, section)
                        origins[(section, key)] = var
                break
        else:
            for section, id_key in lists.items():
                token = section.upper() + "_"
                items = raw.get(section)
                if not rest.startswith(token) or not isinstance(items, list):
                    continue
                found = _entry(items, id_key, rest[len(token) :])
                if found is not None:
                    i, key = found
                    _set_scalar(items[i], key, env[var], var, f"{section}[{i}]")
                    origins[(section, i, key)] = var
    return origins


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read, override from the environment, validate. Raises ConfigError (one line)."""
    path = Path(path).expanduser() if path is not None else DEFAULT_CONFIG
    env = os.environ if env is None else env
    raw = read_toml(path)
    if "source_path" in raw:
        raise ConfigError("source_path: unknown key")
    origins = _apply_env(raw, env)
    try:
        settings = Settings.model_validate(raw, context={"env": env, "from_file": True})
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, origins=origins)) from None
    settings.source_path = path.resolve()
    return settings


def load_simulator_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None):
    """The SMSC simulator's settings alone, as a carrier would have them: the ``[simulator]``
    table of ``path`` (no file: the simulator's own defaults) with ``SMSGW_SIMULATOR_*`` overrides
    (``SMSGW_SIMULATOR_CARRIERS_TELCEL_PORT``). The gateway's sections and secrets are not read.
    Returns a ``simulator.settings.SimulatorSettings``; raises ConfigError (one line)."""
    from simulator.settings import SimulatorSettings

    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path).expanduser()
        table = read_toml(path).get("simulator", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: simulator: expected a table ([simulator])")
        raw["simulator"] = table
    origins = _apply_env(raw, env, sections=("simulator",))
    try:
        return SimulatorSettings.model_validate(raw.get("simulator", {}))
    except ValidationError as e:
        within = {loc[1:]: var for loc, var in origins.items()}
        raise ConfigError(format_validation_error(e, "simulator", within)) from None
