"""Messages: one with its parts and history, the filtered list, and an operator's retry."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from aiohttp import web

from gateway.domain.phone import InvalidNumber, mask_msisdn, normalize_msisdn
from gateway.domain.status import MessageStatus, Priority
from gateway.http.authentication import CLIENT_ID
from gateway.http.deps import DEPS
from gateway.http.problems import Problem
from gateway.http.responses import iso, json_response
from gateway.services.operator_actions import NotAllowed
from gateway.store import outbox, queries
from gateway.store.queries import MessageFilter
from smpp_client.constants import status_name

log = structlog.get_logger("api")


def message_view(row: dict) -> dict:
    error = None
    if row["error_code"] is not None or row["error_text"]:
        code = row["error_code"]
        error = {
            "code": code,
            "name": status_name(code) if code is not None else None,
            "text": row["error_text"],
        }
    return {
        "id": row["id"],
        "to": mask_msisdn(row["msisdn"]),
        "text": row["body"],
        "language": row["language"],
        "encoding": row["encoding"],
        "segments": row["segments"],
        "priority": Priority(row["priority"]).name.lower(),
        "status": row["status"],
        "carrier": row["carrier"],
        "smsc_message_id": row["smsc_message_id"],
        "attempts": row["attempts"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "submitted_at": iso(row["submitted_at"]),
        "done_at": iso(row["done_at"]),
        "expires_at": iso(row["expires_at"]),
        "error": error,
        "parts": [
            {
                "seq": p["seq"],
                "smsc_message_id": p["smsc_message_id"],
                "status": p["status"],
                "error_code": p["error_code"],
                "submitted_at": iso(p["submitted_at"]),
                "done_at": iso(p["done_at"]),
            }
            for p in row.get("parts", [])
        ],
        "history": [
            {"status": h["status"], "at": iso(h["at"]), "detail": h["detail"]} for h in row.get("history", [])
        ],
    }


async def get_message(request: web.Request) -> web.Response:
    client_id = request[CLIENT_ID]
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**31):
        raise Problem(404, "Not found", f"no message {raw!r}", [("id", "must be a message id (an integer)")])
    row = await request.app[DEPS].db.run(outbox.get_message, int(raw))
    # A CRM sees only its own events' messages; replies to citizens' SMS (no event) stay private
    # (an ESTADO reply carries a case's status) and are visible on the operators' dashboard only.
    if row is None or row["client_id"] != client_id:
        raise Problem(404, "Not found", f"no message {raw}")
    return json_response(message_view(row))


# --- GET /api/v1/messages, POST /api/v1/messages/{id}/retry (issue 5) ------------------------------

MAX_LIMIT = 500
_LIST_PARAMS = {"status", "event_id", "msisdn", "since", "broadcast_id", "limit", "cursor"}


def _bad_query(errors: list[tuple[str, str]]) -> Problem:
    detail = "; ".join(f"{name}: {reason}" for name, reason in errors)
    return Problem(400, "Invalid query parameter", detail, errors, slug="invalid-query")


def _positive_int(raw: str, name: str, errors: list, upper: int = 2**31 - 1) -> int | None:
    if raw.isascii() and raw.isdigit() and 0 < int(raw) <= upper:
        return int(raw)
    errors.append((name, f"must be an integer from 1 to {upper}"))
    return None


def parse_filter(query, client_id: str) -> MessageFilter:
    errors: list[tuple[str, str]] = []
    unknown = sorted(set(query) - _LIST_PARAMS)
    for name in unknown:
        errors.append((name, f"unknown parameter; known: {', '.join(sorted(_LIST_PARAMS))}"))
    f = MessageFilter(client_id)
    if "status" in query:
        statuses = [s.strip().lower() for s in query.getall("status") for s in s.split(",") if s.strip()]
        wrong = [s for s in statuses if s not in {m.value for m in MessageStatus}]
        if wrong or not statuses:
            known = ", ".join(s.value for s in MessageStatus)
            errors.append(("status", f"unknown status {', '.join(wrong) or '(empty)'}; known: {known}"))
        f.statuses = statuses
    if "event_id" in query:
        f.event_key = query["event_id"]
    if "msisdn" in query:
        try:
            f.msisdn = normalize_msisdn(query["msisdn"])
        except InvalidNumber as exc:
            errors.append(("msisdn", str(exc)))
    if "since" in query:
        try:
            since = datetime.fromisoformat(query["since"].replace("Z", "+00:00"))
            if since.tzinfo is None:
                raise ValueError("needs an offset")
            f.since = since.astimezone(UTC).replace(tzinfo=None)
        except ValueError:
            errors.append(
                ("since", "must be an ISO 8601 time with an offset, e.g. 2026-11-29T10:00:00-06:00")
            )
    if "broadcast_id" in query:
        f.broadcast_id = _positive_int(query["broadcast_id"], "broadcast_id", errors)
    if "limit" in query:
        f.limit = _positive_int(query["limit"], "limit", errors, MAX_LIMIT) or f.limit
    if "cursor" in query:
        f.before_id = _positive_int(query["cursor"], "cursor", errors)
    if errors:
        raise _bad_query(errors)
    return f


def summary_view(row: dict) -> dict:
    view = message_view(row)
    for key in ("parts", "history"):
        view.pop(key)
    view["event_id"] = row.get("event_key")
    view["broadcast_id"] = row.get("broadcast_id")
    return view


async def list_messages(request: web.Request) -> web.Response:
    client_id = request[CLIENT_ID]
    f = parse_filter(request.query, client_id)
    rows, next_cursor = await request.app[DEPS].db.run(queries.list_messages, f)
    return json_response(
        {
            "items": [summary_view(r) for r in rows],
            "next_cursor": str(next_cursor) if next_cursor is not None else None,
            "limit": f.limit,
        }
    )


async def retry_message(request: web.Request) -> web.Response:
    client_id = request[CLIENT_ID]
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**31):
        raise Problem(404, "Not found", f"no message {raw!r}", [("id", "must be a message id (an integer)")])
    try:
        result = await request.app[DEPS].actions.retry_message(
            int(raw), client_id=client_id, by=f"crm:{client_id}"
        )
    except NotAllowed as exc:
        raise Problem(409, "Cannot retry", str(exc), [("id", str(exc))], slug="not-retryable") from None
    if result is None:
        raise Problem(404, "Not found", f"no message {raw}")
    return json_response(result)
