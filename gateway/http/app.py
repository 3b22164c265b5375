"""The aiohttp applications: their routes, from the endpoints' declarations, and the error middleware."""

from __future__ import annotations

import structlog
from aiohttp import web

from gateway.http import dashboard
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
from gateway.http.operations import Operation, add_routes
from gateway.http.problems import Problem

log = structlog.get_logger("api")

# what every role serves
OPS_OPERATIONS: tuple[Operation, ...] = (*health.OPERATIONS, *metrics.OPERATIONS)
# the CRM API
API_OPERATIONS: tuple[Operation, ...] = (
    *events.OPERATIONS,
    *crm_events.OPERATIONS,
    *messages.OPERATIONS,
    *broadcasts.OPERATIONS,
    *stats.OPERATIONS,
    *subscriptions.OPERATIONS,
    *openapi.OPERATIONS,
)


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


def build_ops_app(ops: OpsDependencies) -> web.Application:
    """What a process serves without the CRM API (the ``dispatch`` role): health and metrics."""
    app = _app(())
    app[OPS] = ops
    add_routes(app, OPS_OPERATIONS)
    return app


def build_api_app(deps: ApiDependencies, ops: OpsDependencies) -> web.Application:
    """The CRM API, with health and metrics (the composition root mounts the dashboard on it)."""
    app = _app([authentication_middleware], deps.max_body_bytes)
    app[DEPS] = deps
    app[OPS] = ops
    app[openapi.DOCUMENT] = openapi.Document((*OPS_OPERATIONS, *API_OPERATIONS, *dashboard.OPERATIONS))
    add_routes(app, OPS_OPERATIONS)
    add_routes(app, API_OPERATIONS)
    return app
