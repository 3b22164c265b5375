"""Every ``/api/v1/*`` request but the public OpenAPI document is authenticated here, once.

The middleware reads the body (bounded by ``max_body_bytes``), verifies the signature against the
method, the request target as sent and the body (gateway/http/signing.py), admits the request
within its client's limits (gateway/http/client_limits.py: a 429 beyond them, before any database
work) and registers the signature as seen (a replay is a 401 in every process:
gateway/store/signatures.py), then hands the client id, the body and the signature to the handler
as ``request[CLIENT_ID]``, ``request[BODY]`` and ``request[SIGNATURE]``. A request matching no
route goes on unauthenticated, to its 404 or 405.

The events endpoint registers its signature itself, in the intake's transaction (one commit for
both on the busiest path), and through :func:`register_once` before any other answer.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http.bodies import BODY, read_body
from gateway.http.deps import DEPS, ApiDependencies
from gateway.http.problems import Problem
from gateway.http.signing import unauthorized, verify
from gateway.store.signatures import Seen

CLIENT_ID = web.RequestKey("client_id", str)
SIGNATURE = web.RequestKey("signature", Seen)

API_PREFIX = "/api/v1/"
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset({("GET", "/api/v1/openapi.json")})
# where v1 signatures (which bind neither method nor path) are still accepted
V1_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/api/v1/events"),
        ("POST", "/api/v1/crm/{client}/events"),
    }
)
# whose handlers register request[SIGNATURE] themselves, before they change or answer anything
REGISTERED_BY_HANDLER: frozenset[tuple[str, str]] = frozenset({("POST", "/api/v1/events")})

REPLAY = "signature already used: sign every request afresh (a retry too)"


def replay() -> Problem:
    return unauthorized(REPLAY)


async def register_once(deps: ApiDependencies, seen: Seen) -> None:
    """Registers the signature as seen, or raises the 401 of a replay."""
    if not await deps.signatures.register(seen):
        raise replay()


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
    ctx = request.app[DEPS]
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
    seen = Seen(verified.timestamp, verified.client_id, verified.digest)
    with ctx.limits.admit(verified.client_id):
        ctx.signatures.purge_when_due()
        if route not in REGISTERED_BY_HANDLER:
            await register_once(ctx, seen)
        request[CLIENT_ID] = verified.client_id
        request[BODY] = body
        request[SIGNATURE] = seen
        return await handler(request)
