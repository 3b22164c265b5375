"""GET /api/v1/stats: counts by status, the last hour's rates and the queue depth by priority."""

from __future__ import annotations

from aiohttp import web

from gateway import clock
from gateway.http.deps import DEPS
from gateway.http.responses import iso, json_response
from gateway.store import queries


async def get_stats(request: web.Request) -> web.Response:
    now = clock.utcnow()
    data = await request.app[DEPS].db.run(queries.stats, now)
    return json_response({"at": iso(now), **data})
