"""The operators' live dashboard: one offline page, a JSON snapshot and a live stream; the
control room's views and actions are gateway/http/control/, mounted beside it.

Operators sign in with their own accounts (gateway/http/operators): without a session the page
redirects to the login and everything else answers 401. Numbers are masked (but in a search by
number, audited) and message texts are not shown: the dashboard is for delivery, not for reading
citizens' messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway import clock
from gateway.domain.operators import Role
from gateway.services.operator_auth import OperatorAuth, current_session
from gateway.store import audit as audit_log
from gateway.store import carrier_pauses, reads
from gateway.store.db import Database
from gateway.store.operators import active_count

from . import control
from .api.schemas import MessageDelivery, Stats
from .control import CONTROL, ControlRoom
from .control.broadcasts import BroadcastProgress, broadcast_progress
from .control.carriers import CarrierState, carrier_states
from .operations import OPERATOR, PUBLIC, Operation, add_routes, answer, content, no_body, problem
from .operators import labels, pages
from .operators import web as operators_web
from .operators.context import OPERATOR_AUTH, SESSION
from .operators.web import GATE, MIDDLEWARES, SESSION_COOKIE, Gate, requires
from .problems import Problem
from .query import parse_query, whole_number
from .responses import Answer, UtcTime, model_response

log = structlog.get_logger("dashboard")

STATIC = Path(__file__).parent / "static"
MOUNT = "/dashboard"
RECENT = 25  # messages in a snapshot
BROADCASTS = 5  # broadcasts in a snapshot
MAX_AUDIT = 500
_templates = Environment(loader=FileSystemLoader(STATIC), autoescape=select_autoescape(default=True))


@dataclass
class DashboardContext:
    db: Database
    auth: OperatorAuth
    links: Callable[[], list[dict]]
    next_commit: Callable[[], Awaitable]  # completes at the next committed status batch
    control: ControlRoom
    failures: Callable[[], dict[str, int]]  # this process's silent-failure counters (api role: none)
    closing: asyncio.Event = field(default_factory=asyncio.Event)  # set at shutdown: streams end


DASHBOARD = web.AppKey("dashboard", DashboardContext)


class LinkState(Answer):
    carrier: str
    session: str = Field(description="the bind's label")
    state: str
    bound: bool
    in_flight: int = Field(description="submit_sm awaiting their response")
    window: int
    paused: bool = Field(description="its carrier is paused by an operator")


class Snapshot(Answer):
    """What the dashboard shows: every bind, the carriers (paused or not), the figures of
    GET /api/v1/stats, the latest messages and broadcasts."""

    at: UtcTime
    links: list[LinkState]
    carriers: list[CarrierState]
    stats: Stats
    recent: list[MessageDelivery]
    broadcasts: list[BroadcastProgress]
    silent_failures: dict[str, int] = Field(
        description="what went wrong without stopping anything: receipts unparsed, unknown, duplicate "
        "or ambiguous, status changes set aside, unusable message ids, unexpected PDUs, refused MO "
        "(this process, since it started) and CRM callbacks given up (every process)"
    )


class AuditEntry(Answer):
    at: UtcTime
    actor: str
    action: str
    target: str | None
    detail: dict | None
    address: str | None


class AuditLog(Answer):
    entries: list[AuditEntry]


def _figures(conn, now) -> tuple[dict, list[dict], list[dict], list[dict], int]:
    return (
        reads.stats(conn, now),
        reads.recent_messages(conn, RECENT),
        reads.recent_broadcasts(conn, BROADCASTS),
        carrier_pauses.listing(conn),
        reads.callbacks_given_up(conn),
    )


async def snapshot(ctx: DashboardContext) -> Snapshot:
    now = clock.utcnow()
    stats, recent, broadcasts, pauses, given_up = await ctx.db.run(_figures, now)
    paused = {p["carrier"] for p in pauses}
    return Snapshot(
        at=now,
        links=[{**link, "paused": link["carrier"] in paused} for link in ctx.links()],
        carriers=carrier_states(ctx.control.actions.carriers, pauses),
        stats=Stats(at=now, **stats),
        recent=[MessageDelivery.from_row(row) for row in recent],
        broadcasts=[broadcast_progress(row) for row in broadcasts],
        silent_failures={**ctx.failures(), "callbacks_given_up": given_up},
    )


async def _slash(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.path + "/")


async def page(request: web.Request) -> web.Response:
    session = request[SESSION]
    lang = pages.language(request)
    texts = pages.TEXTS[lang]
    ctx = request.app[DASHBOARD]
    operator = session.operator
    body = _templates.get_template("dashboard.html").render(
        t=texts,
        lang=lang,
        other="en" if lang == "es" else "es",
        labels=labels.labels(lang),
        tz=ctx.control.tz.key,
        can_act=operator.role.allows(Role.OPERATOR),
        is_admin=operator.role.allows(Role.ADMIN),
        username=operator.username,
        role=texts["roles"][operator.role.label],
        csrf_token=session.csrf_token,
    )
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    response = web.Response(text=body, content_type="text/html", headers=headers)
    pages.remember_language(request, response, MOUNT)
    return response


async def data(request: web.Request) -> web.Response:
    return model_response(await snapshot(request.app[DASHBOARD]))


class AuditQuery(BaseModel):
    """The audit log's filters; other parameters (``lang``) are the pages' own."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=100, ge=1, le=MAX_AUDIT)
    actor: str | None = Field(default=None, description="a username: only what they did")

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: str) -> int:
        return whole_number(value, MAX_AUDIT)


@requires(Role.ADMIN)
async def audit_entries(request: web.Request) -> web.Response:
    """The latest audit entries, newest first."""
    try:
        query = parse_query(AuditQuery, request.query, status=422)
    except Problem as problem:  # answered here: the dashboard may be mounted without the API's middleware
        return problem.response(request.path)
    rows = await request.app[DASHBOARD].db.run(audit_log.recent, query.limit, query.actor or None)
    return model_response(AuditLog(entries=rows))


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
    commit: asyncio.Future | None = None
    try:
        while not ctx.closing.is_set() and not _gone(request):
            if await current_session(ctx.auth, token) is None:  # logged out, expired or disabled
                break
            # bound before the snapshot is read, so a commit while it is read and sent wakes the next
            commit = asyncio.ensure_future(ctx.next_commit())
            payload = (await snapshot(ctx)).dump()
            await response.write(f"event: snapshot\ndata: {payload}\n\n".encode())
            sent = time.monotonic()
            # the next commit, or a heartbeat snapshot after 15 s
            await asyncio.wait({commit, closing}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
            commit.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ctx.closing.wait(), max(0.0, 0.5 - (time.monotonic() - sent)))
    except ConnectionResetError:
        pass
    finally:
        closing.cancel()
        if commit is not None:
            commit.cancel()
    return response


NO_SESSION = problem("No operator session")

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        MOUNT,
        _slash,
        "dashboardRedirect",
        "Redirects to /dashboard/",
        {"302": no_body("to /dashboard/")},
        security=PUBLIC,
        name="slash",
    ),
    Operation(
        "GET",
        f"{MOUNT}/",
        page,
        "dashboardPage",
        "The operators' live delivery dashboard (HTML); without a session, the login page",
        {
            "200": content("text/html", "HTML page"),
            "303": no_body("no session: to /dashboard/login"),
        },
        security=OPERATOR,
        name="page",
    ),
    Operation(
        "GET",
        f"{MOUNT}/data",
        data,
        "dashboardData",
        "The dashboard's snapshot: links, the stats of GET /api/v1/stats and the latest messages",
        {"200": answer(Snapshot, "snapshot"), "401": NO_SESSION},
        security=OPERATOR,
    ),
    Operation(
        "GET",
        f"{MOUNT}/events",
        stream,
        "dashboardEvents",
        "The dashboard's live stream of snapshots (server-sent events `snapshot`, data as /dashboard/data)",
        {"200": content("text/event-stream", "stream"), "401": NO_SESSION},
        security=OPERATOR,
    ),
    Operation(
        "GET",
        f"{MOUNT}/audit",
        audit_entries,
        "auditLog",
        "Who did what, when (admins only), newest first",
        {
            "200": answer(AuditLog, "audit entries, newest first"),
            "401": NO_SESSION,
            "403": problem("Not an admin"),
            "422": problem("`limit` is not a whole number from 1 to 500"),
        },
        security=OPERATOR,
        query=AuditQuery,
    ),
    *control.operations(MOUNT),
    *operators_web.operations(MOUNT),
)


def dashboard_app(ctx: DashboardContext) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES)
    app[DASHBOARD] = ctx
    app[CONTROL] = ctx.control
    app[OPERATOR_AUTH] = ctx.auth
    app[GATE] = Gate(MOUNT, pages=frozenset({"page", "slash"}))

    async def close_streams(_app: web.Application) -> None:
        ctx.closing.set()

    async def warn_without_operators(_app: web.Application) -> None:
        if await ctx.db.run(active_count) == 0:
            log.warning("no operator can sign in to the dashboard: add one with `smsgw operators add NAME`")

    app.on_startup.append(warn_without_operators)
    app.on_shutdown.append(close_streams)
    add_routes(app, OPERATIONS, mount=MOUNT)
    return app
