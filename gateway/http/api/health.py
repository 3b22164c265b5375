"""Liveness and readiness: the database answers and every check of the process's role has no
problem (a carrier bound and a status writer that is not failing, where the role has them)."""

from __future__ import annotations

from aiohttp import web

from gateway.store import reads

from ..deps import OPS
from ..operations import PUBLIC, Operation, answer
from ..responses import model_response
from .schemas import Liveness, Readiness


async def healthz(request: web.Request) -> web.Response:
    return model_response(Liveness(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    deps = request.app[OPS]
    checks = {"database": "ok"}
    try:
        await deps.db.run(reads.ping)
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    for name, check in deps.readiness.items():
        problem = check()
        checks[name] = "ok" if problem is None else problem
    ready = all(v == "ok" for v in checks.values())
    readiness = Readiness(status="ready" if ready else "not ready", checks=checks)
    return model_response(readiness, 200 if ready else 503)


OPERATIONS = (
    Operation(
        "GET", "/healthz", healthz, "healthz", "Liveness", {"200": answer(Liveness, "Alive")}, security=PUBLIC
    ),
    Operation(
        "GET",
        "/readyz",
        readyz,
        "readyz",
        "Readiness: the database answers, a carrier is bound, the status writer is not failing",
        {"200": answer(Readiness, "Ready"), "503": answer(Readiness, "Not ready")},
        security=PUBLIC,
    ),
)
