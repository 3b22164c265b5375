"""Overrides from the environment: ``SMSGW_<SECTION>_<KEY>`` replaces a scalar of a table section
(``SMSGW_DATABASE_URL``); ``SMSGW_CARRIERS_<NAME>_<KEY>`` / ``SMSGW_CRM_CLIENTS_<ID>_<KEY>`` /
``SMSGW_CRM_ADAPTERS_<NAME>_<KEY>`` one of an entry of a list section, found by its name
(``SMSGW_CARRIERS_TELCEL_HOST``); ``SMSGW_SIMULATOR_CARRIERS_<NAME>_<KEY>`` one of an entry of
``[[simulator.carriers]]``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError

ENV_PREFIX = "SMSGW_"
TABLE_SECTIONS = (
    "gateway",
    "database",
    "dispatch",
    "simulator",
    "quiet_hours",
    "validity",
    "templates",
    "notices",
    "callbacks",
    "routing",
    "replies",
    "dashboard",
)
LIST_SECTIONS = {"carriers": "name", "crm_clients": "id", "crm_adapters": "name"}  # section: id key
# lists of tables inside a table section, their entries named like [[carriers]]'s
_NESTED_LISTS = {"simulator": {"carriers": "name"}}


def env_token(value: str) -> str:
    """How a name reads in a variable name: ``"tel-cel"`` -> ``"TEL_CEL"``."""
    return re.sub(r"[^A-Z0-9]", "_", value.upper())


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


def apply_env(
    raw: dict[str, Any], env: Mapping[str, str], sections: Sequence[str] | None = None
) -> dict[tuple[int | str, ...], str]:
    """Apply SMSGW_* overrides in place (only those of ``sections`` when given); returns
    {loc: variable} for error messages."""
    origins: dict[tuple[int | str, ...], str] = {}
    tables = TABLE_SECTIONS if sections is None else tuple(s for s in TABLE_SECTIONS if s in sections)
    lists = {k: v for k, v in LIST_SECTIONS.items() if sections is None or k in sections}
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
