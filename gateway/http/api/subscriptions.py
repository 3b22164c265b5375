"""GET / POST / DELETE /api/v1/subscriptions: a CRM manages a citizen's alerts on their behalf.

The same rules as the SMS keywords (gateway/services/citizen_sms.py): topics AGUA, VIAL, EMERGENCIA,
AVISOS (none = every topic); zones by colonia name or postal code (none = every zone), a name that
means several colonias is refused naming the choices; DELETE without a topic is the opt-out
(subscriptions removed, waiting messages cancelled, nothing more sent). A citizen who opted out is
subscribed again only with ``"consent": "explicit"`` (the CRM states the citizen asked for it);
otherwise 409. Every change is in the consent ledger with channel ``api``, the client id and the
request. No SMS is sent by these endpoints. Errors are problem+json naming the field at fault;
nothing is written on any.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from aiohttp import web
from sqlalchemy import Connection, update

from gateway import clock
from gateway.domain.catalog import TOPICS
from gateway.domain.dates import iso_utc as iso
from gateway.domain.keywords import zone_or_problem
from gateway.domain.languages import parse_language
from gateway.domain.phone import InvalidNumber, normalize_msisdn
from gateway.domain.zones import Zone, ZoneDirectory
from gateway.http.authentication import BODY, CLIENT_ID
from gateway.http.bodies import read_json
from gateway.http.deps import DEPS
from gateway.http.problems import Problem
from gateway.http.responses import json_response
from gateway.store import consent
from gateway.store.models import citizens
from gateway.store.subscriptions import subscribe, subscriptions_of, unsubscribe
from gateway.store.zones import ids_of, sync_zones

_FIELDS = {"msisdn", "topic", "zones", "language", "consent"}
_ALL = {"*", "ALL", "TODO", "TODOS"}
MAX_ZONES = 50


def _invalid(errors: list[tuple[str, str]], status: int = 422) -> Problem:
    detail = "; ".join(f"{name}: {reason}" for name, reason in errors)
    return Problem(status, "Invalid request", detail, errors, slug="invalid-request")


def _msisdn(value: object) -> str:
    if value is None or value == "":
        raise _invalid([("msisdn", "required: the citizen's number, any common Mexican form")], 400)
    if not isinstance(value, str):
        raise _invalid([("msisdn", "must be a string")])
    try:
        return normalize_msisdn(value)
    except InvalidNumber as exc:
        raise _invalid([("msisdn", str(exc))]) from None


def _topic(value: object) -> str | None:
    """None means every topic."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid([("topic", f"must be one of {', '.join(TOPICS)}")])
    topic = value.strip().upper()
    if topic in _ALL:
        return None
    if topic not in TOPICS:
        raise _invalid([("topic", f"unknown topic {value!r}: expected one of {', '.join(TOPICS)}")])
    return topic


def resolve_api_zones(directory: ZoneDirectory, value: object, path: str = "zones") -> list[Zone]:
    """A list of colonia names / postal codes -> zones; raises 422 naming ``zones[i]``."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid([(path, "must be a list of colonia names or postal codes")])
    if len(value) > MAX_ZONES:
        raise _invalid([(path, f"at most {MAX_ZONES} zones")])
    found: dict[str, Zone] = {}
    errors = []
    for i, text in enumerate(value):
        problem = zone_or_problem(directory, text)
        if isinstance(problem, str):
            errors.append((f"{path}[{i}]", problem))
        else:
            found.update((z.key, z) for z in problem)
    if errors:
        raise _invalid(errors)
    return list(found.values())


def _language(value: object, available: list[str]) -> str | None:
    try:
        return parse_language(value, available)
    except ValueError as exc:
        raise _invalid([("language", str(exc))]) from None


def _view(conn: Connection, msisdn: str) -> dict:
    citizen = consent.find_citizen(conn, msisdn)
    if citizen is None:
        return {"msisdn": msisdn, "known": False, "opted_out": False, "language": None, "subscriptions": []}
    row = conn.execute(select_opted_out_at(citizen.id)).first()
    return {
        "msisdn": msisdn,
        "known": True,
        "opted_out": citizen.opted_out,
        "opted_out_at": iso(row.opted_out_at) if row else None,
        "language": citizen.language,
        "subscriptions": [
            {"topic": s["topic"], "zone": s["zone"], "cp": s["cp"], "zone_id": s["zone_id"]}
            for s in subscriptions_of(conn, citizen.id)
        ],
    }


def select_opted_out_at(citizen_id: int):
    from sqlalchemy import select

    return select(citizens.c.opted_out_at).where(citizens.c.id == citizen_id)


def _zone_ids(conn: Connection, directory: ZoneDirectory, zones: list[Zone]) -> list[int]:
    try:
        return ids_of(conn, zones)
    except LookupError:  # the catalogue was never synced into this database
        sync_zones(conn, directory, clock.utcnow())
        return ids_of(conn, zones)


async def list_subscriptions(request: web.Request) -> web.Response:
    msisdn = _msisdn(request.query.get("msisdn"))
    return json_response(await request.app[DEPS].db.run(_view, msisdn))


def _json_object(request: web.Request) -> dict:
    data = read_json(request)
    if not isinstance(data, dict):
        raise Problem(
            400,
            "Malformed JSON",
            "the body must be a JSON object",
            [("body", "must be a JSON object")],
            slug="malformed-json",
        )
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise _invalid([(name, f"unknown field; expected {', '.join(sorted(_FIELDS))}") for name in unknown])
    return data


async def post_subscription(request: web.Request) -> web.Response:
    ctx = request.app[DEPS]
    client_id, body = request[CLIENT_ID], request[BODY]
    data = _json_object(request)
    msisdn = _msisdn(data.get("msisdn"))
    topic = _topic(data.get("topic"))
    directory = ctx.policy.zones
    zones = resolve_api_zones(directory, data.get("zones"))
    language = _language(data.get("language"), ctx.policy.languages)
    explicit = data.get("consent")
    if explicit not in (None, "explicit"):
        raise _invalid(
            [("consent", 'the only value is "explicit" (the citizen asked to be subscribed again)')]
        )
    topics = list(TOPICS) if topic is None else [topic]
    raw = body.decode("utf-8", "replace")

    def work(conn: Connection) -> dict:
        now = clock.utcnow()
        citizen = consent.lock_citizen(conn, msisdn, language or "es", now)
        if citizen.opted_out and explicit != "explicit":
            raise Problem(
                409,
                "Citizen opted out",
                "this number opted out of every message; subscribe it again only when the citizen "
                'asked for it, with "consent": "explicit"',
                [("consent", 'required ("explicit") for a citizen who opted out')],
                slug="opted-out",
            )
        if language and language != citizen.language and not citizen.created:
            conn.execute(
                update(citizens).where(citizens.c.id == citizen.id).values(language=language, updated_at=now)
            )
        rows = []
        opted_in = citizen.opted_out and consent.opt_in(conn, citizen.id, now)
        if opted_in:
            rows.append({"action": consent.OPT_IN})
        zone_ids = _zone_ids(conn, directory, zones) if zones else None
        added = sum(subscribe(conn, citizen.id, t, zone_ids, now) for t in topics)
        rows.append(
            {
                "action": consent.SUBSCRIBE,
                "topics": topics,
                "zones": [z.name for z in zones] if zones else None,
            }
        )
        common = {"citizen_id": citizen.id, "channel": consent.API, "client_id": client_id, "raw": raw}
        consent.record_many(conn, [{**common, "at": now, **r} for r in rows])
        return {**_view(conn, msisdn), "added": added, "opted_in": bool(opted_in)}

    result = await ctx.db.run(work)
    return json_response(result, 201 if result["added"] else 200)


async def delete_subscription(request: web.Request) -> web.Response:
    ctx = request.app[DEPS]
    client_id, body = request[CLIENT_ID], request[BODY]
    if body.strip():
        data = _json_object(request)
        raw = body.decode("utf-8", "replace")
    else:
        data = {k: v[-1] for k, v in parse_qs(request.query_string).items()}
        unknown = sorted(set(data) - {"msisdn", "topic"})
        if unknown:
            raise _invalid(
                [(name, "unknown query parameter; expected msisdn, topic") for name in unknown], 400
            )
        raw = request.query_string
    msisdn = _msisdn(data.get("msisdn"))
    topic = _topic(data.get("topic"))
    status_hook = ctx.callbacks.message_status

    def work(conn: Connection) -> dict:
        now = clock.utcnow()
        record = {"channel": consent.API, "client_id": client_id, "raw": raw, "at": now}
        if topic is not None:
            citizen = consent.find_citizen(conn, msisdn)
            removed = 0
            if citizen is not None:
                removed = unsubscribe(conn, citizen.id, topic)
                consent.record_many(
                    conn,
                    [{"citizen_id": citizen.id, "action": consent.UNSUBSCRIBE, "topics": [topic], **record}],
                )
            return {**_view(conn, msisdn), "removed": removed, "cancelled": 0}
        citizen = consent.lock_citizen(conn, msisdn, "es", now)  # an unknown number is kept, opted out
        result = consent.opt_out(conn, citizen, now, status_hook)
        consent.record_many(
            conn,
            [
                {
                    "citizen_id": citizen.id,
                    "action": consent.OPT_OUT,
                    "topics": result.topics_removed or None,
                    **record,
                }
            ],
        )
        return {
            **_view(conn, msisdn),
            "removed": result.subscriptions_removed,
            "cancelled": len(result.cancelled),
        }

    return json_response(await ctx.db.run(work))


# --- OpenAPI (merged into gateway/http/api/openapi.py) ----------------------------------------------------

_SIGNED = [{"client": [], "signature": []}]
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _problem(description: str) -> dict:
    return {"description": description, "content": _PROBLEM}


def _json(name: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
    }


_COMMON_ERRORS = {
    "400": _problem(
        "Missing or malformed msisdn, unknown query parameter, or a body that is not a JSON object "
        "(nested at most 32 levels, integers of at most 20 digits); `field` names it"
    ),
    "401": _problem(
        "Missing, malformed, unknown or wrong signature (v2 over this method, path, query and body), "
        "a timestamp more than 5 minutes off, or a signature already used; `detail` says which"
    ),
    "500": _problem("Internal error (logged)"),
}
_UNSUPPORTED = _problem("A body not sent as `Content-Type: application/json`")
_MSISDN_QUERY = {
    "name": "msisdn",
    "in": "query",
    "schema": {"type": "string"},
    "description": "the citizen's number, any common Mexican form",
}

SCHEMAS: dict[str, dict] = {
    "Subscriptions": {
        "type": "object",
        "required": ["msisdn", "known", "opted_out", "subscriptions"],
        "properties": {
            "msisdn": {"type": "string", "description": "E.164"},
            "known": {"type": "boolean", "description": "the gateway has a record of this number"},
            "opted_out": {"type": "boolean", "description": "nothing is sent to this number"},
            "opted_out_at": {"type": ["string", "null"], "format": "date-time"},
            "language": {"type": ["string", "null"]},
            "subscriptions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string", "enum": list(TOPICS)},
                        "zone": {"type": ["string", "null"], "description": "null: every zone"},
                        "cp": {"type": ["string", "null"]},
                        "zone_id": {"type": ["integer", "null"]},
                    },
                },
            },
            "added": {"type": "integer", "description": "POST: subscriptions added (0: all were there)"},
            "opted_in": {"type": "boolean", "description": "POST: the citizen had opted out and consented"},
            "removed": {"type": "integer", "description": "DELETE: subscriptions removed"},
            "cancelled": {"type": "integer", "description": "DELETE (opt-out): waiting messages cancelled"},
        },
    },
    "SubscriptionRequest": {
        "type": "object",
        "required": ["msisdn"],
        "additionalProperties": False,
        "properties": {
            "msisdn": {"type": "string", "description": "any common Mexican form; stored as E.164"},
            "topic": {
                "type": ["string", "null"],
                "enum": [*TOPICS, "ALL", None],
                "description": "absent, null or ALL: every topic",
            },
            "zones": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": MAX_ZONES,
                "description": (
                    "colonia names (accents and section numbering optional) or postal codes; absent or "
                    'empty: every zone. A name that means several colonias ("Polanco") is refused '
                    "with the choices."
                ),
            },
            "language": {
                "type": "string",
                "description": "a language with templates: es or en (es-MX is es); else 422",
            },
            "consent": {
                "const": "explicit",
                "description": "required to subscribe a citizen who opted out: the citizen asked for it",
            },
        },
    },
    "UnsubscribeRequest": {
        "type": "object",
        "required": ["msisdn"],
        "additionalProperties": False,
        "properties": {
            "msisdn": {"type": "string"},
            "topic": {"type": ["string", "null"], "description": "absent: every topic (the opt-out)"},
        },
    },
}

OPERATIONS: dict[tuple[str, str], dict] = {
    ("get", "/api/v1/subscriptions"): {
        "operationId": "listSubscriptions",
        "summary": "A citizen's subscriptions and opt-out state",
        "security": _SIGNED,
        "parameters": [{**_MSISDN_QUERY, "required": True}],
        "responses": {
            "200": _json("Subscriptions", "The citizen's subscriptions (empty for an unknown number)"),
            **_COMMON_ERRORS,
            "422": _problem("msisdn is not a Mexican mobile number"),
        },
    },
    ("post", "/api/v1/subscriptions"): {
        "operationId": "subscribe",
        "summary": "Subscribe a citizen to a topic (or every topic) in zones (or every zone)",
        "description": (
            "Same rules as the SMS keyword ALTA. A citizen who opted out is subscribed again only with "
            '`"consent": "explicit"` (409 otherwise). Recorded in the consent ledger (channel api). '
            "No SMS is sent. 201 when something was added, 200 when everything was already there."
        ),
        "security": _SIGNED,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubscriptionRequest"}}},
        },
        "responses": {
            "201": _json("Subscriptions", "Subscribed"),
            "200": _json("Subscriptions", "Nothing to add: already subscribed"),
            **_COMMON_ERRORS,
            "409": _problem('The citizen opted out and `consent` is not "explicit"'),
            "413": _problem("Request body too large"),
            "415": _UNSUPPORTED,
            "422": _problem(
                "A field is invalid (unknown or ambiguous zone, topic, number); `field` names it"
            ),
        },
    },
    ("delete", "/api/v1/subscriptions"): {
        "operationId": "unsubscribe",
        "summary": "Unsubscribe a citizen from a topic, or from everything (opt-out)",
        "description": (
            "`msisdn` and `topic` in the query string or in a JSON body. Without a topic this is the "
            "opt-out: every subscription removed, messages still waiting cancelled, nothing more sent "
            "(an unknown number is recorded as opted out). Recorded in the consent ledger (channel api)."
        ),
        "security": _SIGNED,
        "parameters": [
            _MSISDN_QUERY,
            {"name": "topic", "in": "query", "schema": {"type": "string", "enum": list(TOPICS)}},
        ],
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UnsubscribeRequest"}}},
        },
        "responses": {
            "200": _json("Subscriptions", "Unsubscribed (removed / cancelled say what changed)"),
            **_COMMON_ERRORS,
            "413": _problem("Request body too large"),
            "415": _UNSUPPORTED,
            "422": _problem("A field is invalid; `field` names it"),
        },
    },
}
