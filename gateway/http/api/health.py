"""Liveness and readiness: the database answers, a carrier is bound, and every registered check
(the status writer among them) has no problem."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from gateway.http.deps import CONTEXT
from gateway.http.responses import json_response


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def _ping(conn) -> None:
    conn.execute(text("SELECT 1"))


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    checks = {"database": "ok", "carriers": "ok"}
    try:
        await ctx.db.run(_ping)
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if not ctx.is_ready():
        checks["carriers"] = "no carrier bound"
    for name, check in ctx.readiness_checks.items():
        problem = check()
        checks[name] = "ok" if problem is None else problem
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
    )
