"""GET /api/v1/messages/{id}: one message with its parts and status history."""

from __future__ import annotations

from aiohttp import web

from gateway.domain.phone import mask_msisdn
from gateway.domain.status import Priority
from gateway.store import outbox
from smpp_client.constants import status_name

from .common import authenticate, iso, json_response
from .context import CONTEXT
from .problems import Problem


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
    client_id = await authenticate(request)
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**31):
        raise Problem(404, "Not found", f"no message {raw!r}", [("id", "must be a message id (an integer)")])
    row = await request.app[CONTEXT].db.run(outbox.get_message, int(raw))
    if row is None or row["client_id"] not in (None, client_id):  # a CRM sees its own events' messages
        raise Problem(404, "Not found", f"no message {raw}")
    return json_response(message_view(row))
