"""The operators' live delivery dashboard: one offline page, a JSON snapshot and a live stream.

Operators authenticate with HTTP Basic (``[dashboard] user`` and the password in the environment
variable named by ``password_env``); without a password configured the dashboard is off. Numbers
are masked and message texts are not shown: the dashboard is for delivery, not for reading
citizens' messages.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from gateway import clock
from gateway.api.common import iso
from gateway.domain.phone import mask_msisdn
from gateway.domain.status import Priority
from gateway.store import queries
from gateway.store.db import Database
from gateway.store.models import messages

STATIC = Path(__file__).parent / "static"


@dataclass
class DashboardContext:
    db: Database
    user: str
    password: str
    links: Callable[[], list[dict]]
    next_commit: Callable[[], Awaitable]  # completes at the next committed status batch
    closing: asyncio.Event = field(default_factory=asyncio.Event)  # set at shutdown: streams end


DASHBOARD = web.AppKey("dashboard", DashboardContext)


def _recent(conn, limit: int = 25) -> list[dict]:
    m = messages.c
    rows = conn.execute(
        select(m.id, m.msisdn, m.status, m.priority, m.carrier, m.segments, m.encoding)
        .add_columns(m.updated_at, m.error_text)
        .order_by(m.id.desc())
        .limit(limit)
    ).mappings()
    return [
        {
            "id": r["id"],
            "to": mask_msisdn(r["msisdn"]),
            "status": r["status"],
            "priority": Priority(r["priority"]).name.lower(),
            "carrier": r["carrier"],
            "segments": r["segments"],
            "encoding": r["encoding"],
            "updated_at": iso(r["updated_at"]),
            "error": r["error_text"],
        }
        for r in rows
    ]


def _snapshot(conn, now) -> dict:
    return {"stats": queries.stats(conn, now), "recent": _recent(conn)}


async def snapshot(ctx: DashboardContext) -> dict:
    now = clock.utcnow()
    data = await ctx.db.run(_snapshot, now)
    return {"at": iso(now), "links": ctx.links(), **data}


def _authorized(request: web.Request, ctx: DashboardContext) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not ctx.password:
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user.encode(), ctx.user.encode()) & hmac.compare_digest(
        password.encode(), ctx.password.encode()
    )


@web.middleware
async def _basic_auth(request: web.Request, handler):
    ctx = request.app[DASHBOARD]
    if not ctx.password:
        raise web.HTTPNotFound(text="the dashboard is off: set [dashboard] password_env")
    if not _authorized(request, ctx):
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="smsgw operators"'})
    return await handler(request)


async def _slash(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.path + "/")


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "dashboard.html", headers={"Cache-Control": "no-store"})


async def data(request: web.Request) -> web.Response:
    return web.json_response(await snapshot(request.app[DASHBOARD]))


def _gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a fresh snapshot after status changes are committed, at most twice a second."""
    ctx = request.app[DASHBOARD]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    closing = asyncio.ensure_future(ctx.closing.wait())
    try:
        while not ctx.closing.is_set() and not _gone(request):
            payload = json.dumps(await snapshot(ctx), ensure_ascii=False)
            await response.write(f"event: snapshot\ndata: {payload}\n\n".encode())
            sent = time.monotonic()
            commit = asyncio.ensure_future(ctx.next_commit())
            # the next commit, or a heartbeat snapshot after 15 s
            await asyncio.wait({commit, closing}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
            commit.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ctx.closing.wait(), max(0.0, 0.5 - (time.monotonic() - sent)))
    except ConnectionResetError:
        pass
    finally:
        closing.cancel()
    return response


def dashboard_app(ctx: DashboardContext) -> web.Application:
    app = web.Application(middlewares=[_basic_auth])
    app[DASHBOARD] = ctx

    async def close_streams(_app: web.Application) -> None:
        ctx.closing.set()

    app.on_shutdown.append(close_streams)
    app.router.add_get("", _slash)
    app.router.add_get("/", page)
    app.router.add_get("/data", data)
    app.router.add_get("/events", stream)
    return app
