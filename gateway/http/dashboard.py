"""The operators' live delivery dashboard: one offline page, a JSON snapshot and a live stream.

Operators sign in with their own accounts (gateway/operators): without a session the page
redirects to the login and everything else answers 401. Numbers are masked and message texts are
not shown: the dashboard is for delivery, not for reading citizens' messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from gateway import clock
from gateway.domain.phone import mask_msisdn
from gateway.domain.status import Priority
from gateway.http.problems import Problem
from gateway.http.responses import iso
from gateway.operators import accounts, pages
from gateway.operators import audit as audit_log
from gateway.operators.context import OPERATOR_AUTH, SESSION, OperatorAuth
from gateway.operators.login import current_session
from gateway.operators.roles import Role
from gateway.operators.web import GATE, MIDDLEWARES, SESSION_COOKIE, Gate, add_routes, requires
from gateway.store import queries
from gateway.store.db import Database
from gateway.store.models import messages

log = structlog.get_logger("dashboard")

STATIC = Path(__file__).parent / "static"
MOUNT = "/dashboard"
_templates = Environment(loader=FileSystemLoader(STATIC), autoescape=select_autoescape(default=True))


@dataclass
class DashboardContext:
    db: Database
    auth: OperatorAuth
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


async def _slash(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.path + "/")


async def page(request: web.Request) -> web.Response:
    session = request[SESSION]
    lang = pages.language(request)
    texts = pages.TEXTS[lang]
    body = _templates.get_template("dashboard.html").render(
        t=texts,
        username=session.operator.username,
        role=texts["roles"][session.operator.role.label],
        csrf_token=session.csrf_token,
    )
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    response = web.Response(text=body, content_type="text/html", headers=headers)
    pages.remember_language(request, response, MOUNT)
    return response


async def data(request: web.Request) -> web.Response:
    return web.json_response(await snapshot(request.app[DASHBOARD]))


@requires(Role.ADMIN)
async def audit_entries(request: web.Request) -> web.Response:
    """The latest audit entries, newest first (``limit`` up to 500, ``actor`` a username)."""
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        problem = Problem(422, "Invalid query", "limit: a whole number from 1 to 500", [("limit", "1-500")])
        return problem.response(request.path)
    actor = request.query.get("actor") or None
    rows = await request.app[DASHBOARD].db.run(audit_log.recent, int(raw), actor)
    entries = [{**row, "at": iso(row["at"])} for row in rows]
    return web.json_response({"entries": entries})


def _gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a fresh snapshot after status changes are committed, at most twice a second,
    while the session lasts (it is read again before each snapshot)."""
    ctx = request.app[DASHBOARD]
    token = request.cookies.get(SESSION_COOKIE)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    closing = asyncio.ensure_future(ctx.closing.wait())
    try:
        while not ctx.closing.is_set() and not _gone(request):
            if await current_session(ctx.auth, token) is None:  # logged out, expired or disabled
                break
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
    app = web.Application(middlewares=MIDDLEWARES)
    app[DASHBOARD] = ctx
    app[OPERATOR_AUTH] = ctx.auth
    app[GATE] = Gate(MOUNT, pages=frozenset({"page", "slash"}))

    async def close_streams(_app: web.Application) -> None:
        ctx.closing.set()

    async def warn_without_operators(_app: web.Application) -> None:
        if await ctx.db.run(accounts.active_count) == 0:
            log.warning("no operator can sign in to the dashboard: add one with `smsgw operators add NAME`")

    app.on_startup.append(warn_without_operators)
    app.on_shutdown.append(close_streams)
    app.router.add_get("", _slash, name="slash")
    app.router.add_get("/", page, name="page")
    app.router.add_get("/data", data)
    app.router.add_get("/events", stream)
    app.router.add_get("/audit", audit_entries)
    add_routes(app)
    return app
