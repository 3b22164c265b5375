"""Broadcasts: their progress, and an operator's cancel (queued and held messages become cancelled;
a finished broadcast, whose messages have all left or ended, answers 409)."""

from __future__ import annotations

import structlog
from aiohttp import web

from gateway.http.authentication import CLIENT_ID
from gateway.http.deps import DEPS
from gateway.http.problems import Problem
from gateway.http.responses import iso, json_response
from gateway.services.operator_actions import NotAllowed
from gateway.store import broadcasts

log = structlog.get_logger("api")


def _broadcast_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**31):
        raise Problem(
            404, "Not found", f"no broadcast {raw!r}", [("id", "must be a broadcast id (an integer)")]
        )
    return int(raw)


def broadcast_view(row: dict) -> dict:
    counts = row["messages"]
    return {
        "id": row["id"],
        "event_id": row["event_key"],
        "type": row["type"],
        "topic": row["topic"],
        "zones": row["zone_names"] if row["zone_ids"] is not None else None,
        "scope": row["scope"],
        "priority": ["emergency", "high", "normal", "low"][row["priority"]],
        "status": row["status"],
        "recipients": row["recipients"],
        "queued": row["queued"],
        "messages": counts,
        "texts": row["texts"],
        "not_before": iso(row["not_before"]),
        "expires_at": iso(row["expires_at"]),
        "created_at": iso(row["created_at"]),
        "finished_at": iso(row["finished_at"]),
    }


async def get_broadcast(request: web.Request) -> web.Response:
    client_id = request[CLIENT_ID]
    broadcast_id = _broadcast_id(request)
    row = await request.app[DEPS].db.run(broadcasts.get, broadcast_id)
    if row is None or row["client_id"] != client_id:
        raise Problem(404, "Not found", f"no broadcast {broadcast_id}")
    return json_response(broadcast_view(row))


async def cancel_broadcast(request: web.Request) -> web.Response:
    client_id = request[CLIENT_ID]
    broadcast_id = _broadcast_id(request)
    try:
        result = await request.app[DEPS].actions.cancel_broadcast(
            broadcast_id, client_id=client_id, by=f"crm:{client_id}"
        )
    except NotAllowed as exc:
        raise Problem(409, "Cannot cancel", str(exc), [("id", str(exc))], slug="not-cancellable") from None
    if result is None:
        raise Problem(404, "Not found", f"no broadcast {broadcast_id}")
    return json_response(
        {
            "id": broadcast_id,
            "status": "cancelled",
            "previous_status": result["previous_status"],
            "cancelled": result["cancelled"],
        }
    )
