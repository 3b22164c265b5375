"""A CRM's own JSON as a case event, by a declarative mapping file (TOML or JSON), without code.

```toml
[fields]                                   # case event field = where it is in the CRM's body
id = { format = "suac-{solicitud.folio}-{movimiento.consecutivo}" }
type = { path = "movimiento.estatus", map = "tipo" }
occurred_at = { path = "movimiento.fecha", date_format = "%d/%m/%Y %H:%M" }
"case.folio" = "solicitud.folio"           # a string is a path: a.b, a.list[0].c
"citizen.language" = { const = "es" }
"area.zones" = { path = "ubicacion.colonias", split = ";" }

[maps.tipo]                                # the CRM's words -> ours; "*" catches the rest
"EN PROCESO" = "case.status_changed"
```

A field is one of ``path`` / ``format`` (``{path}`` placeholders) / ``const``, optionally with
``map`` (a table under ``[maps]``; keys match without regard to case, accents or spaces),
``date_format`` (strptime; the result carries ``timezone``, default the city's), ``split`` (a
separator, for list fields) and ``default`` (when the path is absent). Absent values are left
out, so the intake's own rules say what is missing. Every error, the intake's included, names the
CRM's own field (``ciudadano.celular: … is not a Mexican mobile number``): a canonical path maps
back to the source path it came from.

:func:`load_mapping` checks a file at start-up; each problem is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.settings import ConfigError
from gateway.domain.catalog import EVENT_KINDS
from gateway.domain.events import EVENT_FIELDS
from gateway.services.intake import IntakeService

_SPEC_KEYS = {"path", "format", "const", "map", "date_format", "timezone", "split", "default"}
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_MISSING = object()


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).upper().split())


def parse_path(text: str) -> tuple[str | int, ...]:
    """``a.b[0].c`` -> ("a", "b", 0, "c"); raises ValueError."""
    steps: list[str | int] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        if text[pos] == "." and steps and pos + 1 < len(text):
            pos += 1
        m = _STEP.match(text, pos)
        if m is None:
            raise ValueError(f"not a path: {text!r} (expected names separated by dots, [n] for items)")
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not steps:
        raise ValueError("empty path")
    return tuple(steps)


def _get(body: object, steps: tuple[str | int, ...]) -> object:
    value = body
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return _MISSING
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return _MISSING
            value = value[step]
    return _MISSING if value is None else value


@dataclass(frozen=True, slots=True)
class FieldRule:
    target: str
    path: tuple[str | int, ...] | None = None
    source: str | None = None  # the path as written (what errors name)
    template: str | None = None
    placeholders: tuple[tuple[str, tuple[str | int, ...]], ...] = ()
    const: object = _MISSING
    value_map: dict[str, object] | None = None
    map_name: str | None = None
    date_format: str | None = None
    tz: ZoneInfo | None = None
    split: str | None = None
    default: object = _MISSING

    @property
    def named(self) -> str:
        """What an error about this field names: the CRM's field(s), or the mapping's constant."""
        if self.source is not None:
            return self.source
        if self.placeholders:
            return ", ".join(name for name, _ in self.placeholders)
        return f"{self.target} (a constant of the mapping)"


class Mapping:
    def __init__(self, name: str, rules: list[FieldRule]):
        self.name = name
        self.rules = rules
        self._by_target = {r.target: r for r in rules}

    # --- body -> case event ---------------------------------------------------------------------

    def apply(self, body: object) -> tuple[dict, list[tuple[str, str]]]:
        """(the case event, errors naming the CRM's fields); errors: the event is not usable."""
        if not isinstance(body, dict):
            return {}, [("body", "the body must be a JSON object")]
        payload: dict = {}
        errors: list[tuple[str, str]] = []
        for rule in self.rules:
            try:
                value = self._value(rule, body)
            except ValueError as exc:
                errors.append((rule.named, str(exc)))
                continue
            if value is _MISSING:
                continue
            node = payload
            *parents, leaf = rule.target.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return payload, errors

    def _value(self, rule: FieldRule, body: dict) -> object:
        if rule.const is not _MISSING:
            value = rule.const
        elif rule.template is not None:
            parts = {}
            for name, steps in rule.placeholders:
                found = _get(body, steps)
                if found is _MISSING or isinstance(found, dict | list) or str(found).strip() == "":
                    raise ValueError(f"required to build {rule.target}; missing from the body")
                parts[name] = str(found).strip()
            value = _PLACEHOLDER.sub(lambda m: parts[m.group(1)], rule.template)
        else:
            value = _get(body, rule.path)
            if value is _MISSING or (isinstance(value, str) and not value.strip()):
                value = rule.default
                if value is _MISSING:
                    return _MISSING
        if rule.value_map is not None:
            value = self._mapped(rule, value)
        kind = EVENT_FIELDS[rule.target]
        if kind == "list":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(rule.split or ";") if v.strip()]
            elif not isinstance(value, list):
                raise ValueError("must be a list or a text of items separated by " + repr(rule.split or ";"))
            return [str(v) if isinstance(v, int | float) else v for v in value]
        if kind in ("datetime", "date") and rule.date_format and isinstance(value, str):
            try:
                moment = datetime.strptime(value.strip(), rule.date_format)
            except ValueError:
                raise ValueError(f"{value!r} does not match the date format {rule.date_format!r}") from None
            if kind == "date":
                return moment.date().isoformat()
            return moment.replace(tzinfo=moment.tzinfo or rule.tz).isoformat()
        if kind == "text" and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value

    def _mapped(self, rule: FieldRule, value: object) -> object:
        if isinstance(value, dict | list):
            raise ValueError(f"must be a single value to look up in [maps.{rule.map_name}]")
        key = _fold(str(value))
        if key in rule.value_map:
            return rule.value_map[key]
        if "*" in rule.value_map:
            return rule.value_map["*"]
        known = ", ".join(repr(k) for k in sorted(rule.value_map)[:12])
        raise ValueError(f"unknown value {value!r}; expected one of {known}")

    # --- canonical errors -> the CRM's fields ---------------------------------------------------

    def source_of(self, path: str) -> str:
        """The CRM's field behind a case event path (``citizen.msisdn`` -> ``ciudadano.celular``)."""
        if path == "body":
            return path
        best = None
        for target in self._by_target:
            if path == target or path.startswith((target + ".", target + "[")):
                if best is None or len(target) > len(best):
                    best = target
        if best is None:
            return f"{path} (not given by the mapping {self.name})"
        rule = self._by_target[best]
        suffix = path[len(best) :]
        if rule.source is not None and not (rule.split and suffix.startswith("[")):
            return rule.source + suffix
        return rule.named

    def source_errors(self, errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(self.source_of(path), reason) for path, reason in errors]


# --- loading and checking ---------------------------------------------------------------------------


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _read(path: Path, where: str) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(where, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(
            where, f"{path.name} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise _fail(where, "the mapping must be a table")
    return data


def _rule(target: str, spec: object, maps: dict, tz: ZoneInfo, where: str) -> FieldRule:
    key = f"{where}.fields.{target}"
    if target not in EVENT_FIELDS:
        raise _fail(key, f"not a field of the case event; known: {', '.join(EVENT_FIELDS)}")
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, dict):
        raise _fail(key, "expected a path (text) or a table with path, format or const")
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise _fail(f"{key}.{unknown[0]}", f"unknown key; expected {', '.join(sorted(_SPEC_KEYS))}")
    given = [k for k in ("path", "format", "const") if k in spec]
    if len(given) != 1:
        raise _fail(key, "give exactly one of path, format or const")
    values: dict = {"target": target}
    if "path" in spec:
        if not isinstance(spec["path"], str):
            raise _fail(f"{key}.path", "expected text such as ciudadano.celular")
        try:
            values["path"] = parse_path(spec["path"])
        except ValueError as exc:
            raise _fail(f"{key}.path", str(exc)) from None
        values["source"] = spec["path"].strip()
    elif "format" in spec:
        template = spec["format"]
        names = _PLACEHOLDER.findall(template) if isinstance(template, str) else []
        if not names:
            raise _fail(f"{key}.format", "expected text with {path} placeholders, e.g. crm-{caso.id}")
        try:
            values["placeholders"] = tuple((n, parse_path(n)) for n in names)
        except ValueError as exc:
            raise _fail(f"{key}.format", str(exc)) from None
        values["template"] = template
    else:
        values["const"] = spec["const"]
    if "map" in spec:
        name = spec["map"]
        if name not in maps:
            raise _fail(f"{key}.map", f"no table [maps.{name}] in the mapping")
        values["value_map"] = maps[name]
        values["map_name"] = name
    if "date_format" in spec:
        if EVENT_FIELDS[target] not in ("datetime", "date") or not isinstance(spec["date_format"], str):
            raise _fail(f"{key}.date_format", "only for date fields, as strptime text such as %d/%m/%Y %H:%M")
        values["date_format"] = spec["date_format"]
    zone = spec.get("timezone")
    try:
        values["tz"] = ZoneInfo(zone) if zone else tz
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"{key}.timezone", f"unknown time zone {zone!r}") from None
    if "split" in spec:
        if EVENT_FIELDS[target] != "list" or not isinstance(spec["split"], str) or not spec["split"]:
            raise _fail(f"{key}.split", "only for list fields (area.zones), as a separator such as ';'")
        values["split"] = spec["split"]
    if "default" in spec:
        values["default"] = spec["default"]
    return FieldRule(**values)


def load_mapping(path: Path, tz: ZoneInfo, where: str = "mapping") -> Mapping:
    """Read and check a mapping file; raises ConfigError (one line naming the key)."""
    data = _read(path, where)
    unknown = sorted(set(data) - {"fields", "maps", "description"})
    if unknown:
        raise _fail(f"{where}.{unknown[0]}", "unknown key; expected fields, maps, description")
    raw_maps = data.get("maps", {})
    if not isinstance(raw_maps, dict):
        raise _fail(f"{where}.maps", "expected tables of values")
    maps: dict[str, dict[str, object]] = {}
    for name, table in raw_maps.items():
        if not isinstance(table, dict) or not table:
            raise _fail(f"{where}.maps.{name}", "expected a table of the CRM's values -> ours")
        maps[name] = {k if k == "*" else _fold(str(k)): v for k, v in table.items()}
    fields = data.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise _fail(f"{where}.fields", "required: the case event's fields and where they are in the body")
    rules = [_rule(target, spec, maps, tz, where) for target, spec in fields.items()]
    targets = {r.target for r in rules}
    for required in ("id", "type"):
        if required not in targets:
            raise _fail(f"{where}.fields.{required}", "required key is missing")
    for rule in rules:
        if rule.target == "type":
            options = list(rule.value_map.values()) if rule.value_map else []
            if rule.const is not _MISSING:
                options.append(rule.const)
            for option in options:
                if option not in EVENT_KINDS:
                    where_key = f"{where}.maps.{rule.map_name}" if rule.map_name else f"{where}.fields.type"
                    raise _fail(
                        where_key, f"{option!r} is not an event type; known: {', '.join(EVENT_KINDS)}"
                    )
    return Mapping(path.name, rules)


@dataclass(frozen=True, slots=True)
class CrmInbound:
    """What POST /api/v1/crm/{client}/events needs: the intake and each client's mapping."""

    intake: IntakeService
    mappings: dict[str, Mapping]
