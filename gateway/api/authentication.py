"""Every ``/api/v1/*`` request but the public OpenAPI document is authenticated here, once.

The middleware reads the body (bounded by ``max_body_bytes``), verifies the signature against the
method, the request target as sent and the body (gateway/api/auth.py), registers it as seen (a
replay is a 401 in every process: gateway/store/signatures.py), then hands the client id and the
body to the handler as ``request[CLIENT_ID]`` and ``request[BODY]``. A request matching no route
goes on unauthenticated, to its 404 or 405.
"""

from __future__ import annotations

from aiohttp import web

from .auth import unauthorized, verify
from .common import read_body
from .context import CONTEXT

CLIENT_ID = web.RequestKey("client_id", str)
BODY = web.RequestKey("body", bytes)

API_PREFIX = "/api/v1/"
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset({("GET", "/api/v1/openapi.json")})
# where v1 signatures (which bind neither method nor path) are still accepted
V1_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/api/v1/events"),
    }
)


def _route(request: web.Request) -> tuple[str, str] | None:
    match = request.match_info
    if match.http_exception is not None or match.route.resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return method, match.route.resource.canonical


@web.middleware
async def authentication_middleware(request: web.Request, handler):
    route = _route(request) if request.path.startswith(API_PREFIX) else None
    if route is None or route in PUBLIC_ROUTES:
        return await handler(request)
    ctx = request.app[CONTEXT]
    body = await read_body(request, ctx.max_body_bytes)
    verified = verify(
        request.headers,
        request.method,
        request.raw_path,
        body,
        ctx.secrets,
        ctx.signature_tolerance_seconds,
        allow_v1=route in V1_ROUTES,
    )
    if not await ctx.signatures.register(verified.client_id, verified.digest, verified.timestamp):
        raise unauthorized("signature already used: sign every request afresh (a retry too)")
    request[CLIENT_ID] = verified.client_id
    request[BODY] = body
    return await handler(request)
