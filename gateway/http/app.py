"""The aiohttp application: routes and the error middleware."""

from __future__ import annotations

import structlog
from aiohttp import web

from gateway.http.api import (
    broadcasts,
    crm_events,
    events,
    health,
    messages,
    metrics,
    openapi,
    stats,
    subscriptions,
)
from gateway.http.authentication import authentication_middleware
from gateway.http.deps import DEPS, OPS, ApiDependencies, OpsDependencies
from gateway.http.problems import Problem

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
        for name in ("Allow", "WWW-Authenticate"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except Exception:
        log.exception("unhandled error", path=request.path)
        return Problem(500, "Internal error", "the error was logged", slug="internal").response(request.path)


def _app(middlewares, client_max_size: int = 1024**2) -> web.Application:
    return web.Application(middlewares=[problem_middleware, *middlewares], client_max_size=client_max_size)


def _add_ops(app: web.Application, ops: OpsDependencies) -> None:
    app[OPS] = ops
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", metrics.metrics)


def build_ops_app(ops: OpsDependencies) -> web.Application:
    """What a process serves without the CRM API (the ``dispatch`` role): health and metrics."""
    app = _app(())
    _add_ops(app, ops)
    return app


def build_api_app(deps: ApiDependencies, ops: OpsDependencies) -> web.Application:
    """The CRM API, with health and metrics."""
    app = _app([authentication_middleware], deps.max_body_bytes)
    app[DEPS] = deps
    _add_ops(app, ops)
    app.router.add_post("/api/v1/events", events.post_event)
    app.router.add_post("/api/v1/crm/{client}/events", crm_events.post_crm_event)
    app.router.add_get("/api/v1/messages/{id}", messages.get_message)
    app.router.add_get("/api/v1/messages", messages.list_messages)
    app.router.add_post("/api/v1/messages/{id}/retry", messages.retry_message)
    app.router.add_get("/api/v1/broadcasts/{id}", broadcasts.get_broadcast)
    app.router.add_post("/api/v1/broadcasts/{id}/cancel", broadcasts.cancel_broadcast)
    app.router.add_get("/api/v1/stats", stats.get_stats)
    app.router.add_get("/api/v1/openapi.json", openapi.get_openapi)
    app.router.add_get("/api/v1/subscriptions", subscriptions.list_subscriptions)
    app.router.add_post("/api/v1/subscriptions", subscriptions.post_subscription)
    app.router.add_delete("/api/v1/subscriptions", subscriptions.delete_subscription)
    return app
