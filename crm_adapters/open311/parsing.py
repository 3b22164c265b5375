"""GeoReport v2 responses, JSON or XML, into plain records.

JSON is "a mechanical mapping of the XML": a top-level array of objects (some servers wrap it as
``{"service_requests": [...]}`` or ``{"service_requests": {"request": [...]}}``; both are read).
Every value is kept as a string (the spec's own example sends ``service_request_id`` and
``zipcode`` as numbers, and ``"service_code":006``, which strict JSON refuses: numbers written
with leading zeros are read as the strings they are). XML is ``<service_requests><request>…``
(``<service_request_updates><request_update>…`` for FixMyStreet's updates); a DOCTYPE is refused
(no entity expansion from a remote server). Errors (``<errors><error><code>…``, or a JSON array of
``{"code", "description"}``) become :class:`Open311Error`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, tzinfo

Record = dict[str, object]  # field -> str, or a nested Record / list for extensions


class MalformedResponse(ValueError):
    """The body is not the JSON or XML it should be."""


class Open311Error(Exception):
    """The server refused the query (HTTP status, and its errors as (code, description))."""

    def __init__(self, status: int, errors: tuple[tuple[str, str], ...] = ()):
        super().__init__(status, errors)
        self.status = status
        self.errors = errors

    def __str__(self) -> str:
        what = "; ".join(f"{code}: {text}" if code else text for code, text in self.errors)
        return f"HTTP {self.status}" + (f": {what}" if what else "")


# --- JSON -------------------------------------------------------------------------------------------


def _leading_zero_numbers(text: str) -> str:
    """Quote bare numbers written with leading zeros (``006`` -> ``"006"``), outside strings."""
    out: list[str] = []
    i, n, in_string = 0, len(text), False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch == "0" and i + 1 < n and text[i + 1].isdigit() and (not out or not out[-1].isalnum()):
            j = i
            while j < n and (text[j].isdigit() or text[j] == "."):
                j += 1
            out.append(f'"{text[i:j]}"')
            i = j
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _load_json(body: bytes) -> object:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedResponse(f"not UTF-8: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        try:
            return json.loads(_leading_zero_numbers(text))
        except json.JSONDecodeError:
            raise MalformedResponse(f"not valid JSON: {first}") from None


def _scalar(value: object) -> object:
    if value is None or isinstance(value, bool):
        return None if value is None else str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _scalar(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    return str(value)


def _json_records(data: object, wrapper: str, item: str) -> list[Record]:
    if isinstance(data, dict):
        inner = data.get(wrapper, data.get("errors"))
        if inner is None:
            raise MalformedResponse(f"expected an array or an object with {wrapper!r}")
        if isinstance(inner, dict):
            inner = inner.get(item, [])
            inner = [inner] if isinstance(inner, dict) else inner
        data = inner
    if not isinstance(data, list):
        raise MalformedResponse("expected an array of objects")
    records = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise MalformedResponse(f"item {i} is not an object")
        records.append({str(k): _scalar(v) for k, v in entry.items()})
    return records


# --- XML --------------------------------------------------------------------------------------------


def _element(node: ET.Element) -> object:
    children = list(node)
    if not children:
        return (node.text or "").strip() or None
    out: dict[str, object] = {}
    for child in children:
        value = _element(child)
        if child.tag in out:  # repeated element: a list (notes, attributes)
            previous = out[child.tag]
            out[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[child.tag] = value
    return out


def _xml_root(body: bytes) -> ET.Element:
    if b"<!DOCTYPE" in body[:2048].upper() or b"<!ENTITY" in body.upper():
        raise MalformedResponse("XML with a DOCTYPE or entities is not accepted")
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise MalformedResponse(f"not valid XML: {exc}") from None


def _xml_records(root: ET.Element, wrapper: str, item: str) -> list[Record]:
    if root.tag != wrapper:
        raise MalformedResponse(f"expected <{wrapper}>, got <{root.tag}>")
    records = []
    for node in root:
        if node.tag != item:
            continue
        value = _element(node)
        records.append(value if isinstance(value, dict) else {})
    return records


def _errors_of(records: list[Record]) -> tuple[tuple[str, str], ...]:
    return tuple((str(r.get("code") or ""), str(r.get("description") or "")) for r in records)


def parse_list(body: bytes, fmt: str, wrapper: str, item: str) -> list[Record]:
    """The records of a 2xx response (``service_requests``/``request`` or the updates feed)."""
    if fmt == "xml":
        root = _xml_root(body)
        if root.tag == "errors":
            raise Open311Error(200, _errors_of(_xml_records(root, "errors", "error")))
        return _xml_records(root, wrapper, item)
    data = _load_json(body)
    records = _json_records(data, wrapper, item)
    if records and all(set(r) <= {"code", "description"} and "description" in r for r in records):
        raise Open311Error(200, _errors_of(records))
    return records


def parse_errors(status: int, body: bytes, fmt: str) -> Open311Error:
    """An error response as an Open311Error, with the server's descriptions when it gave any."""
    try:
        if fmt == "xml" or body.lstrip().startswith(b"<"):
            root = _xml_root(body)
            found = _errors_of(_xml_records(root, "errors", "error")) if root.tag == "errors" else ()
        else:
            found = _errors_of(_json_records(_load_json(body), "errors", "error"))
    except MalformedResponse:
        found = ()
    return Open311Error(status, found)


# --- dates ------------------------------------------------------------------------------------------


def parse_datetime(value: object, default_tz: tzinfo) -> datetime | None:
    """A w3c datetime as aware UTC; one without an offset is in ``default_tz``; None if absent.
    Raises ValueError for text that is not a datetime."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_tz)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00: before the year 1 in UTC
        raise ValueError(f"{text!r} is out of range in UTC") from None


def w3c(moment: datetime) -> str:
    """UTC, second precision, ``Z``: what start_date / end_date take."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
