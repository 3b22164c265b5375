"""The aiohttp application: routes and the error middleware."""

from __future__ import annotations

import structlog
from aiohttp import web

from .api import events, health, messages
from .api.context import CONTEXT, ApiContext
from .api.problems import Problem

log = structlog.get_logger("api")


@web.middleware
async def problem_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response(request.path)
    except web.HTTPRequestEntityTooLarge:
        return Problem(413, "Request body too large", slug="too-large").response(request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = Problem(exc.status, exc.reason, slug=f"http-{exc.status}").response(request.path)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error", path=request.path)
        return Problem(500, "Internal error", "the error was logged", slug="internal").response(request.path)


def build_app(ctx: ApiContext) -> web.Application:
    app = web.Application(middlewares=[problem_middleware], client_max_size=ctx.max_body_bytes)
    app[CONTEXT] = ctx
    app.router.add_post("/api/v1/events", events.post_event)
    app.router.add_get("/api/v1/messages/{id}", messages.get_message)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    return app
