"""Request helpers shared by the API handlers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiohttp import web

from gateway.http.problems import Problem


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, however the client split it; over ``limit`` bytes is a 413."""
    too_large = Problem(
        413, "Request body too large", f"the body must be at most {limit} bytes", slug="too-large"
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks, size = [], 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data, ensure_ascii=False, default=str), content_type="application/json"
    )
