"""GET /api/v1/openapi.json: the OpenAPI 3.1 description of every endpoint of the running app.

The operations are written here by hand; the document served lists exactly the routes the app
has (a test checks that every route is described and nothing else is).
"""

from __future__ import annotations

import copy

from aiohttp import web

from gateway.domain.catalog import EVENT_KINDS, TOPICS
from gateway.domain.status import MessageStatus
from gateway.http.api import subscriptions as subscriptions_api
from gateway.http.responses import json_response

SIGNED = [{"client": [], "signature": []}]
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict:
    return {"description": description, "content": _PROBLEM}


UNAUTHORIZED = _problem(
    "Missing client or signature header, unknown client, malformed signature header (over 1,024 "
    "characters, a `t` of more than 12 digits), a signature that does not match this method, path, "
    "query and body, a timestamp more than 5 minutes off, or a signature already used (a replay: "
    "sign every request afresh); `detail` says which"
)
UNSUPPORTED_MEDIA_TYPE = _problem("The body is not sent as `Content-Type: application/json`")
BAD_JSON = (
    "the body is not UTF-8 JSON, nests more than 32 levels, or has an integer of more than 20 "
    "digits or another number of more than 40 characters (`field` is `body`)"
)
ERRORS = {
    "400": _problem("Malformed request (bad query parameter); `field` names it"),
    "401": UNAUTHORIZED,
    "404": _problem("No such resource for this client"),
    "409": _problem("The action does not apply in the resource's current state"),
    "413": _problem("Request body too large"),
    "415": UNSUPPORTED_MEDIA_TYPE,
    "422": _problem("The event is invalid; `field` and `invalid_params` name every field at fault"),
    "500": _problem("Internal error (logged)"),
}
V2 = 'HMAC-SHA256(secret, "<t>.<METHOD>.<path with query>.<raw body>")'
V1 = 'HMAC-SHA256(secret, "<t>.<raw body>")'
SIGNATURE_FORMAT = (
    f"`t=<unix seconds>,v2=<hex {V2}>`, the path with query being the request target exactly as "
    "sent on the request line; several v2 values may be given while a secret is rotated. Each "
    "signature is accepted once. Only `POST /api/v1/events` also accepts the older "
    f"`v1=<hex {V1}>`, which binds neither method nor path."
)


def _errors(*codes: str) -> dict:
    return {code: ERRORS[code] for code in codes}


_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_STATUSES = [s.value for s in MessageStatus]
_DATETIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, dict] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "field": {"type": "string", "description": "the (first) field at fault, dotted path"},
            "invalid_params": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "reason"],
                    "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
                },
            },
        },
    },
    "CaseEvent": {
        "type": "object",
        "description": (
            "A CRM event. `id`, `type` and what the type needs are required: "
            + "; ".join(f"{k.type}: {', '.join(k.required)}" for k in EVENT_KINDS.values())
            + ". Broadcast types need `area.zones` (colonia names or postal codes of the catalogue) "
            "except emergency.alert, which without zones goes to every zone."
        ),
        "required": ["id", "type"],
        "properties": {
            "id": {
                "type": "string",
                "maxLength": 128,
                "description": "the CRM's id; reposting it changes nothing",
            },
            "type": {"type": "string", "enum": list(EVENT_KINDS)},
            "occurred_at": {"type": "string", "format": "date-time", "description": "with an offset"},
            "priority": {
                "type": "string",
                "enum": ["emergency", "high", "normal", "low"],
                "description": "overrides the type's; only emergency.alert may say emergency",
            },
            "case": {
                "type": "object",
                "required": ["folio"],
                "properties": {
                    "folio": {"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9][A-Za-z0-9._/-]*$"},
                    "category": {"type": "string", "maxLength": 120},
                    "status": {"type": "string", "maxLength": 120},
                    "progress": {"type": "integer", "minimum": 0, "maximum": 100},
                    "resolution_date": {"type": "string", "format": "date"},
                    "appointment": {
                        "type": "object",
                        "required": ["at"],
                        "properties": {
                            "at": {"type": "string", "format": "date-time"},
                            "place": {"type": "string", "maxLength": 200},
                        },
                    },
                },
            },
            "citizen": {
                "type": "object",
                "required": ["msisdn"],
                "properties": {
                    "msisdn": {"type": "string", "description": "any common Mexican form; stored as E.164"},
                    "name": {"type": "string", "maxLength": 120},
                    "language": {"type": "string", "description": "es or en (es-MX is es); default es"},
                },
            },
            "area": {
                "type": "object",
                "properties": {"zones": {"type": "array", "items": {"type": "string"}, "maxItems": 200}},
            },
            "notice": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "maxLength": 1000},
                    "starts_at": {"type": "string", "format": "date-time"},
                    "ends_at": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
    "EventAccepted": {
        "type": "object",
        "required": ["event_id", "message_ids", "recipients"],
        "properties": {
            "event_id": {"type": "string"},
            "message_ids": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "messages queued for a case event; empty for a broadcast (see broadcast_id)",
            },
            "recipients": {
                "type": "integer",
                "description": "recipients of the messages; for a broadcast, counted when it was accepted",
            },
            "broadcast_id": {
                "type": "integer",
                "description": "broadcasts only: fanned out after this answer (GET /api/v1/broadcasts/{id})",
            },
            "status": {
                "type": "string",
                "enum": ["queued", "held", "done"],
                "description": "broadcasts only",
            },
            "skipped": {
                "type": "array",
                "description": "case events only, when someone gets no message: who (masked) and why",
                "items": {
                    "type": "object",
                    "required": ["msisdn", "reason"],
                    "properties": {
                        "msisdn": {"type": "string", "examples": ["+52******5678"]},
                        "reason": {"type": "string", "enum": ["opted_out"]},
                    },
                },
            },
        },
    },
    "MessageError": {
        "type": ["object", "null"],
        "properties": {
            "code": {"type": ["integer", "null"]},
            "name": {"type": ["string", "null"]},
            "text": {"type": ["string", "null"]},
        },
    },
    "MessageSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "to": {"type": "string", "description": "masked: +52******5678"},
            "text": {"type": "string"},
            "language": {"type": "string"},
            "encoding": {"type": "string", "enum": ["gsm7", "ucs2"]},
            "segments": {"type": "integer"},
            "priority": {"type": "string", "enum": ["emergency", "high", "normal", "low"]},
            "status": {"type": "string", "enum": _STATUSES},
            "carrier": {"type": ["string", "null"]},
            "smsc_message_id": {"type": ["string", "null"]},
            "attempts": {"type": "integer"},
            "created_at": _DATETIME,
            "updated_at": _DATETIME,
            "submitted_at": _DATETIME,
            "done_at": _DATETIME,
            "expires_at": _DATETIME,
            "error": _ref("MessageError"),
            "event_id": {"type": ["string", "null"], "description": "the CRM's event id"},
            "broadcast_id": {"type": ["integer", "null"]},
        },
    },
    "Message": {
        "allOf": [
            _ref("MessageSummary"),
            {
                "type": "object",
                "properties": {
                    "parts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "seq": {"type": "integer"},
                                "smsc_message_id": {"type": "string"},
                                "status": {"type": "string"},
                                "error_code": {"type": ["string", "null"]},
                                "submitted_at": _DATETIME,
                                "done_at": _DATETIME,
                            },
                        },
                    },
                    "history": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "status": {"type": "string", "enum": _STATUSES},
                                "at": _DATETIME,
                                "detail": {"type": ["string", "null"]},
                            },
                        },
                    },
                },
            },
        ]
    },
    "MessageList": {
        "type": "object",
        "required": ["items", "next_cursor", "limit"],
        "properties": {
            "items": {"type": "array", "items": _ref("MessageSummary")},
            "next_cursor": {"type": ["string", "null"], "description": "pass as `cursor` for the next page"},
            "limit": {"type": "integer"},
        },
    },
    "RetryResult": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["queued", "held"]},
            "previous_status": {"type": "string"},
        },
    },
    "Broadcast": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "event_id": {"type": "string"},
            "type": {"type": "string"},
            "topic": {"type": "string", "enum": list(TOPICS)},
            "zones": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "null: every zone",
            },
            "scope": {"type": "string", "enum": ["subscribers", "citizens"]},
            "priority": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "running", "done", "cancelled", "expired"]},
            "recipients": {"type": "integer"},
            "queued": {"type": "integer", "description": "messages queued so far by the fan-out"},
            "messages": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "by status",
            },
            "texts": {"type": "object", "description": "the text per language, rendered once"},
            "not_before": _DATETIME,
            "expires_at": _DATETIME,
            "created_at": _DATETIME,
            "finished_at": _DATETIME,
        },
    },
    "CancelResult": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"const": "cancelled"},
            "previous_status": {"type": "string"},
            "cancelled": {"type": "integer", "description": "messages cancelled (queued or held)"},
        },
    },
    "Stats": {
        "type": "object",
        "properties": {
            "at": _DATETIME,
            "messages": {
                "type": "object",
                "properties": {
                    "total": {"type": "integer"},
                    "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
            "queue": {
                "type": "object",
                "properties": {
                    "depth": {"type": "integer", "description": "queued messages"},
                    "held": {"type": "integer", "description": "held by quiet hours"},
                    "by_priority": {"type": "object"},
                },
            },
            "last_hour": {
                "type": "object",
                "description": "queued, submitted, delivered, failed; per_minute rates",
            },
            "broadcasts_in_progress": {"type": "integer"},
            "callbacks_pending": {"type": "integer"},
        },
    },
    "Health": {"type": "object", "properties": {"status": {"type": "string"}, "checks": {"type": "object"}}},
}

OPERATIONS: dict[tuple[str, str], dict] = {
    ("post", "/api/v1/events"): {
        "operationId": "postEvent",
        "summary": "Post one case event",
        "description": (
            "Validates the event, records it and queues its messages in one transaction, then answers 202. "
            "Posting the same `id` with the same body again (signed afresh) changes nothing and answers "
            "as the first time did; another body under that `id` is a 409. Broadcasts "
            "(water.outage, traffic.alert, emergency.alert, notice) answer with a `broadcast_id` and the "
            "recipient count; their messages are queued by the fan-out right after. Nothing is written on "
            "any error. This endpoint also accepts the older v1 signature "
            f"(`t=<unix seconds>,v1=<hex {V1}>`), for CRMs that sign v1 today."
        ),
        "security": SIGNED,
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CaseEvent")}}},
        "responses": {
            "202": _json(_ref("EventAccepted"), "Accepted (or a repeated post of an accepted event)"),
            "400": _problem("Malformed JSON: " + BAD_JSON),
            **_errors("401", "413", "415"),
            "409": _problem(
                "Idempotency key reused with a different body: this `id` was accepted with another "
                "body (compared as JSON: whitespace and key order do not matter); nothing changed"
            ),
            **_errors("422", "500"),
        },
    },
    ("post", "/api/v1/crm/{client}/events"): {
        "operationId": "postCrmEvent",
        "summary": "Post one event in the CRM's own JSON",
        "description": (
            "The body is the CRM's own JSON; the client's mapping file (`[[crm_adapters]]` kind "
            "`mapped_json`) makes the case event of it, which is then accepted exactly as by "
            "POST /api/v1/events (same 202 body; the same event id again answers as the first time). "
            "Every error names the CRM's own field (`ciudadano.celular`, not `citizen.msisdn`). "
            "`client` must be the signing client. 409: the event id was already used for another event."
        ),
        "security": SIGNED,
        "parameters": [{"name": "client", "in": "path", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {
            "202": _json(_ref("EventAccepted"), "Accepted (or a repeated post of an accepted event)"),
            "403": _problem("`client` is not the signing client"),
            **_errors("400", "401", "404", "409", "413", "422", "500"),
        },
    },
    ("get", "/api/v1/messages"): {
        "operationId": "listMessages",
        "summary": "List this client's messages, newest first",
        "security": SIGNED,
        "parameters": [
            {
                "name": "status",
                "in": "query",
                "schema": {"type": "string"},
                "description": f"one or more (comma-separated) of {', '.join(_STATUSES)}",
            },
            {
                "name": "event_id",
                "in": "query",
                "schema": {"type": "string"},
                "description": "the CRM's event id",
            },
            {
                "name": "msisdn",
                "in": "query",
                "schema": {"type": "string"},
                "description": "recipient, any common Mexican form",
            },
            {
                "name": "since",
                "in": "query",
                "schema": {"type": "string", "format": "date-time"},
                "description": "created at or after (with an offset)",
            },
            {"name": "broadcast_id", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
            },
            {
                "name": "cursor",
                "in": "query",
                "schema": {"type": "string"},
                "description": "next_cursor of the previous page (keyset pagination)",
            },
        ],
        "responses": {
            "200": _json(_ref("MessageList"), "A page of messages"),
            **_errors("400", "401", "500"),
        },
    },
    ("get", "/api/v1/messages/{id}"): {
        "operationId": "getMessage",
        "summary": "One message with its parts and status history",
        "security": SIGNED,
        "parameters": [_ID_PARAM],
        "responses": {"200": _json(_ref("Message"), "The message"), **_errors("401", "404", "500")},
    },
    ("post", "/api/v1/messages/{id}/retry"): {
        "operationId": "retryMessage",
        "summary": "Send a failed, expired, undeliverable or rejected message again",
        "description": "Queued again with a fresh validity (held in quiet hours). Empty body, signed.",
        "security": SIGNED,
        "parameters": [_ID_PARAM],
        "responses": {
            "200": _json(_ref("RetryResult"), "Queued again"),
            **_errors("401", "404", "409", "413", "500"),
        },
    },
    ("get", "/api/v1/broadcasts/{id}"): {
        "operationId": "getBroadcast",
        "summary": "A broadcast's fan-out progress and its messages by status",
        "security": SIGNED,
        "parameters": [_ID_PARAM],
        "responses": {"200": _json(_ref("Broadcast"), "The broadcast"), **_errors("401", "404", "500")},
    },
    ("post", "/api/v1/broadcasts/{id}/cancel"): {
        "operationId": "cancelBroadcast",
        "summary": "Cancel a broadcast: its queued and held messages become cancelled",
        "description": (
            "Stops the fan-out; messages already handed to a carrier go on. Empty body, signed. "
            "Only an unfinished broadcast (still fanning out, or with queued or held messages) can "
            "be cancelled: a finished or already cancelled one answers 409 and nothing changes."
        ),
        "security": SIGNED,
        "parameters": [_ID_PARAM],
        "responses": {
            "200": _json(_ref("CancelResult"), "Cancelled"),
            "409": _problem("The broadcast is finished or already cancelled; nothing changed"),
            **_errors("401", "404", "413", "500"),
        },
    },
    ("get", "/api/v1/stats"): {
        "operationId": "getStats",
        "summary": "Counts by status, the last hour's rates, queue depth by priority",
        "security": SIGNED,
        "responses": {"200": _json(_ref("Stats"), "Current figures"), **_errors("401", "500")},
    },
    ("get", "/api/v1/openapi.json"): {
        "operationId": "getOpenApi",
        "summary": "This document",
        "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
    },
    ("get", "/healthz"): {
        "operationId": "healthz",
        "summary": "Liveness",
        "security": [],
        "responses": {"200": _json(_ref("Health"), "Alive")},
    },
    ("get", "/readyz"): {
        "operationId": "readyz",
        "summary": "Readiness: the database answers, a carrier is bound, the status writer is not failing",
        "security": [],
        "responses": {"200": _json(_ref("Health"), "Ready"), "503": _json(_ref("Health"), "Not ready")},
    },
    ("get", "/dashboard"): {
        "operationId": "dashboardRedirect",
        "summary": "Redirects to /dashboard/",
        "security": [],
        "responses": {"302": {"description": "to /dashboard/"}},
    },
    ("get", "/dashboard/"): {
        "operationId": "dashboardPage",
        "summary": "The operators' live delivery dashboard (HTML); without a session, the login page",
        "security": [{"operator": []}],
        "responses": {
            "200": {"description": "HTML page", "content": {"text/html": {}}},
            "303": {"description": "no session: to /dashboard/login"},
        },
    },
    ("get", "/dashboard/login"): {
        "operationId": "loginPage",
        "summary": "The operators' login form (Spanish; ?lang=en for English)",
        "security": [],
        "responses": {"200": {"description": "HTML page", "content": {"text/html": {}}}},
    },
    ("post", "/dashboard/login"): {
        "operationId": "login",
        "summary": "Sign in with the form fields username, password and csrf_token; sets the session cookie",
        "security": [],
        "responses": {
            "303": {"description": "signed in: to the page asked for"},
            "401": {"description": "wrong name or password (the form again)", "content": {"text/html": {}}},
            "422": {"description": "a field is empty", "content": {"text/html": {}}},
            "429": {"description": "locked after repeated failures; Retry-After says until when"},
        },
    },
    ("post", "/dashboard/logout"): {
        "operationId": "logout",
        "summary": "End the session (X-CSRF-Token header or csrf_token form field)",
        "security": [{"operator": []}],
        "responses": {
            "303": {"description": "to the login page"},
            "403": _problem("Missing or wrong CSRF token"),
        },
    },
    ("get", "/dashboard/data"): {
        "operationId": "dashboardData",
        "summary": "The dashboard's snapshot: the stats of GET /api/v1/stats and recent messages",
        "security": [{"operator": []}],
        "responses": {
            "200": {"description": "snapshot", "content": {"application/json": {}}},
            "401": _problem("No operator session"),
        },
    },
    ("get", "/dashboard/events"): {
        "operationId": "dashboardEvents",
        "summary": "The dashboard's live stream of snapshots (server-sent events)",
        "security": [{"operator": []}],
        "responses": {
            "200": {"description": "stream", "content": {"text/event-stream": {}}},
            "401": _problem("No operator session"),
        },
    },
    ("get", "/dashboard/audit"): {
        "operationId": "auditLog",
        "summary": "Who did what, when (admins only)",
        "security": [{"operator": []}],
        "responses": {
            "200": {"description": "audit entries", "content": {"application/json": {}}},
            "401": _problem("No operator session"),
            "403": _problem("Not an admin"),
        },
    },
    ("get", "/metrics"): {
        "operationId": "metrics",
        "summary": "Prometheus metrics",
        "security": [],
        "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {}}}},
    },
}
OPERATIONS.update(subscriptions_api.OPERATIONS)  # issue 6: /api/v1/subscriptions
SCHEMAS.update(subscriptions_api.SCHEMAS)


def routes_of(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, mounted sub-applications included (their
    resources carry the full path); HEAD left out (aiohttp adds it to every GET)."""
    out = set()
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" in info:  # a mounted sub-application
            out |= routes_of(info["app"])
            continue
        path = info.get("path") or info.get("formatter")
        if not path:
            continue
        for route in resource:
            if route.method not in ("HEAD", "*"):
                out.add((route.method.lower(), path))
    return out


def build_document(app: web.Application) -> dict:
    paths: dict[str, dict] = {}
    for method, path in sorted(routes_of(app), key=lambda mp: (mp[1], mp[0])):
        operation = OPERATIONS.get((method, path))
        if operation is None:
            operation = {
                "summary": "(not described)",
                "responses": {"default": {"description": "see source"}},
            }
        paths.setdefault(path, {})[method] = copy.deepcopy(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "smsgw",
            "version": "1",
            "description": (
                "SMS citizen-notification gateway. Requests are signed: `X-Smsgw-Client: <id>` and "
                f"`X-Smsgw-Signature`: {SIGNATURE_FORMAT} A GET or an empty POST signs the empty body. "
                "Errors are application/problem+json."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "operator": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "smsgw_session",
                    "description": "an operator's session, from POST /dashboard/login",
                },
                "client": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Smsgw-Client",
                    "description": "client id",
                },
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Smsgw-Signature",
                    "description": SIGNATURE_FORMAT,
                },
            },
        },
    }


async def get_openapi(request: web.Request) -> web.Response:
    return json_response(build_document(request.app))
