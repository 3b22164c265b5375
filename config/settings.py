"""Configuration: one TOML file, validated by pydantic, overridable from the environment.

The sections, by concern: the process (config/process.py), the carriers and routing
(config/carriers.py), the CRMs (config/crm.py, config/crm_adapters.py), what is sent and when
(config/messages.py). ``SMSGW_<SECTION>_<KEY>`` overrides a key (config/environment.py); secrets
never sit in the file: ``password_env`` / ``secret_env`` / ``api_key_env`` name the variable that
holds them (config/secrets.py). Every problem is one :class:`ConfigError` line naming the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from .base import Section
from .carriers import CarrierSettings, DispatchSettings, PrefixRouteSettings, RoutingSettings
from .crm import CallbacksSettings, CrmClientSettings
from .crm_adapters import CrmAdapterSettings, check_adapters
from .environment import ENV_PREFIX, apply_env, env_token
from .errors import ConfigError, format_validation_error
from .messages import (
    NoticesSettings,
    QuietHoursSettings,
    RepliesSettings,
    TemplatesSettings,
    ValiditySettings,
)
from .process import DashboardSettings, DatabaseSettings, GatewaySettings, parse_listen

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_CONFIG",
    "DEMO_CONFIG",
    "ENV_PREFIX",
    "CallbacksSettings",
    "CarrierSettings",
    "ConfigError",
    "CrmClientSettings",
    "DashboardSettings",
    "DatabaseSettings",
    "DispatchSettings",
    "GatewaySettings",
    "NoticesSettings",
    "PrefixRouteSettings",
    "QuietHoursSettings",
    "RepliesSettings",
    "RoutingSettings",
    "Settings",
    "TemplatesSettings",
    "ValiditySettings",
    "env_token",
    "format_validation_error",
    "load_settings",
    "load_simulator_settings",
    "parse_listen",
    "read_toml",
]

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"
DEMO_CONFIG = CONFIG_DIR / "demo.toml"


class Settings(Section):
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
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    replies: RepliesSettings = Field(default_factory=RepliesSettings)
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

    def path(self, value: str | None) -> Path | None:
        """A path from the configuration: relative to the configuration file's folder."""
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and self.source_path is not None:
            path = self.source_path.parent / path
        return path

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
    origins = apply_env(raw, env)
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
    origins = apply_env(raw, env, sections=("simulator",))
    try:
        return SimulatorSettings.model_validate(raw.get("simulator", {}))
    except ValidationError as e:
        within = {loc[1:]: var for loc, var in origins.items()}
        raise ConfigError(format_validation_error(e, "simulator", within)) from None
