"""Liveness and readiness: the database answers and every check of the process's role has no
problem (a carrier bound and a status writer that is not failing, where the role has them)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from gateway.http.deps import OPS
from gateway.http.responses import json_response


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def _ping(conn) -> None:
    conn.execute(text("SELECT 1"))


async def readyz(request: web.Request) -> web.Response:
    deps = request.app[OPS]
    checks = {"database": "ok"}
    try:
        await deps.db.run(_ping)
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    for name, check in deps.readiness.items():
        problem = check()
        checks[name] = "ok" if problem is None else problem
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
    )
