"""Broadcasts: their progress, and an operator's cancel (queued and held messages become cancelled;
a finished broadcast, whose messages have all left or ended, answers 409)."""

from __future__ import annotations

import structlog
from aiohttp import web

from gateway import clock
from gateway.http.authentication import CLIENT_ID
from gateway.http.deps import CONTEXT
from gateway.http.problems import Problem
from gateway.http.responses import iso, json_response
from gateway.store import broadcasts, callbacks

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
    row = await request.app[CONTEXT].db.run(broadcasts.get, broadcast_id)
    if row is None or row["client_id"] != client_id:
        raise Problem(404, "Not found", f"no broadcast {broadcast_id}")
    return json_response(broadcast_view(row))


def _cancel(conn, broadcast_id: int, client_id: str, now, targets: dict[str, str]) -> dict | None:
    row = broadcasts.get(conn, broadcast_id)
    if row is None or row["client_id"] != client_id:
        return None
    result = broadcasts.cancel(conn, broadcast_id, now)
    if client_id in targets:
        payload = {
            "type": "broadcast.cancelled",
            "broadcast_id": broadcast_id,
            "event_id": row["event_key"],
            "cancelled": result["cancelled"],
            "at": callbacks.iso(now),
        }
        callbacks.enqueue(conn, [(client_id, targets[client_id], "broadcast.cancelled", None, payload)], now)
    return result


async def cancel_broadcast(request: web.Request) -> web.Response:
    client_id = request[CLIENT_ID]
    ctx = request.app[CONTEXT]
    broadcast_id = _broadcast_id(request)
    try:
        result = await ctx.db.run(_cancel, broadcast_id, client_id, clock.utcnow(), ctx.callback_targets)
    except broadcasts.NotCancellable as exc:
        raise Problem(409, "Cannot cancel", str(exc), [("id", str(exc))], slug="not-cancellable") from None
    if result is None:
        raise Problem(404, "Not found", f"no broadcast {broadcast_id}")
    log.info("broadcast cancelled", client=client_id, broadcast_id=broadcast_id, messages=result["cancelled"])
    return json_response(
        {
            "id": broadcast_id,
            "status": "cancelled",
            "previous_status": result["previous_status"],
            "cancelled": result["cancelled"],
        }
    )
