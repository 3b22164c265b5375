"""GET /api/v1/stats: counts by status, the last hour's rates and the queue depth by priority."""

from __future__ import annotations

from aiohttp import web

from gateway import clock
from gateway.store import reads
from gateway.store.db import Database

from ..deps import DEPS
from ..operations import Operation, answer
from ..responses import model_response
from .errors import errors
from .schemas import Stats


async def current_stats(db: Database) -> Stats:
    now = clock.utcnow()
    return Stats(at=now, **await db.run(reads.stats, now))


async def get_stats(request: web.Request) -> web.Response:
    return model_response(await current_stats(request.app[DEPS].db))


OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/stats",
        get_stats,
        "getStats",
        "Counts by status, the last hour's rates, queue depth by priority",
        {"200": answer(Stats, "Current figures"), **errors("401", "500")},
    ),
)
