"""Assembles a running gateway from its settings: database, SMPP links, scheduler, HTTP API."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable
from datetime import datetime, timedelta

import structlog
from aiohttp import web

from config.settings import Settings
from crm_adapters.wiring import CrmAdapters
from scheduler.dispatcher import Dispatcher
from scheduler.jobs import OutboxJobs
from smpp_client.events import BindChanged
from smpp_client.pool import CarrierPool

from . import clock, link_config
from .api.context import ApiContext
from .api.metrics import MetricsSources
from .app import build_app
from .dashboard import MOUNT as DASHBOARD_MOUNT
from .dashboard import DashboardContext, dashboard_app
from .domain.composer import Composer
from .domain.templates import TemplateRenderer
from .notices import NoticeServices
from .operators.context import OperatorAuth
from .replies import CitizenInbox
from .services.intake import IntakeService
from .services.link_events import CitizenInbox as LinkInbox
from .services.link_events import LinkEventHandler, msisdn_e164
from .store.db import Database
from .store.status_writer import StatusWriter

log = structlog.get_logger("gateway")


class GatewayRuntime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.node_id = settings.gateway.node_id or f"{socket.gethostname()}:{os.getpid()}"
        self.db: Database | None = None
        self.pool: CarrierPool | None = None
        self.jobs: OutboxJobs | None = None
        self.dispatcher: Dispatcher | None = None
        self.writer: StatusWriter | None = None
        self.link_events: LinkEventHandler | None = None
        self.citizens: LinkInbox | None = None  # the inbox MOs go to (wrapped by the CRM adapters)
        self.notices: NoticeServices | None = None
        self.inbox: CitizenInbox | None = None  # citizens' SMS (keywords) and replies
        self.intake: IntakeService | None = None
        self.crm: CrmAdapters | None = None  # [[crm_adapters]]: Open311 pollers, mapped JSON
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def port(self) -> int:
        server = self._site._server if self._site else None
        return server.sockets[0].getsockname()[1] if server and server.sockets else 0

    @property
    def url(self) -> str:
        return f"http://{self.settings.gateway.host}:{self.port}"

    async def start(self) -> None:
        s = self.settings
        self.db = Database(s.database.url)
        self.notices = NoticeServices(s, self.db, on_queued=lambda: self.jobs.wake())
        await self.notices.prepare()  # refuses templates that can exceed the maximum parts
        self.inbox = CitizenInbox(
            self.db, self.notices.policy, s.replies, max_segments=s.templates.max_segments
        )
        self.inbox.check_templates()  # reply templates (AYUDA in one part)
        carriers = link_config.carrier_configs(s.carriers, s.gateway.short_code)
        receipt_ids = link_config.receipt_id_relations(carriers)
        self.writer = StatusWriter(self.db, receipt_ids=receipt_ids)
        self.writer.start()
        self.link_events = LinkEventHandler(self.writer, self, on_bind=self._bind_changed)
        self.pool = CarrierPool(
            carriers,
            self.link_events,
            on_room=self._wake_dispatch,
            router=link_config.router(s.routing, carriers),
            receipt_ids=receipt_ids,
            sender_number=msisdn_e164,
            clock=lambda: clock.utcnow(),
        )
        self.pool.start()
        self.dispatcher = Dispatcher(
            self.db,
            self.pool,
            self.writer,
            owner=self.node_id,
            batch_size=s.dispatch.batch_size,
            lease_seconds=s.dispatch.lease_seconds,
            max_attempts=s.dispatch.max_attempts,
        )
        self.jobs = OutboxJobs(self.db, self.dispatcher, s.dispatch.interval_seconds)
        self.jobs.start()
        await self.notices.start(self.jobs.scheduler, self.writer, self.jobs)
        crm = self.notices.callbacks if self.notices.callbacks and self.notices.callbacks.enabled else None
        self.inbox.attach(  # MOs wait for this before they are handled
            on_queued=self.jobs.wake,
            appointment_hook=crm.appointment_hook if crm else None,
            status_hook=crm.status_hook if crm else None,
            on_callbacks=crm.wake if crm else None,
        )
        self.intake = IntakeService(
            self.db,
            self.notices.policy,
            self.notices.intake,
            on_queued=self.jobs.wake,
            on_broadcast=self.notices.fanout.wake,
            on_reminders=self.notices.apply_reminders,
        )
        self.crm = CrmAdapters(s, self.db, self.intake, owner=self.node_id)
        self.citizens = self.crm.citizen_inbox(self.inbox)
        composer = Composer(TemplateRenderer(s.gateway.tz, s.gateway.short_code), s.gateway.transliteration)
        ctx = ApiContext(
            db=self.db,
            composer=composer,
            secrets={c.id: c.secret for c in s.crm_clients},
            validity=timedelta(hours=s.dispatch.validity_hours),
            max_body_bytes=s.gateway.max_body_bytes,
            signature_tolerance_seconds=s.gateway.signature_tolerance_seconds,
            on_queued=self.jobs.wake,
            is_ready=lambda: self.pool.any_bound,
            readiness_checks={"status_writer": self.writer.problem},
        )
        self.notices.configure(ctx)
        ctx.extra["citizens"] = self.inbox  # /api/v1/subscriptions
        ctx.extra["metrics"] = MetricsSources(
            self.pool, self.writer, self.dispatcher, self.link_events, self.inbox
        )
        ctx.crm_inbound = self.crm.inbound
        app = build_app(ctx)
        app.add_subapp(
            DASHBOARD_MOUNT,
            dashboard_app(
                DashboardContext(
                    self.db,
                    OperatorAuth.from_settings(self.db, s.dashboard),
                    self.link_states,
                    self.writer.next_commit,
                )
            ),
        )
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, s.gateway.host, s.gateway.port)
        await self._site.start()
        self.crm.install(self.jobs.scheduler)
        log.info("gateway listening", url=self.url, node=self.node_id, carriers=list(self.pool.carriers))

    async def handle(self, carrier: str | None, msisdn: str, text: str, received_at: datetime) -> object:
        """The citizens' inbox of the link events: the CRM adapters' wrapper once it is built."""
        return await (self.citizens or self.inbox).handle(carrier, msisdn, text, received_at)

    def _wake_dispatch(self) -> None:
        if self.jobs is not None:
            self.jobs.wake()

    def _bind_changed(self, change: BindChanged) -> None:
        if change.bound:
            self._wake_dispatch()

    def link_states(self) -> list[dict]:
        """Every bind of every carrier, for the dashboard."""
        return [
            {
                "carrier": name,
                "session": session.label,
                "state": session.state,
                "bound": session.state == "bound",
                "in_flight": session.in_flight,
                "window": session.config.window,
            }
            for name, carrier in (self.pool.carriers.items() if self.pool else ())
            for session in carrier.sessions
        ]

    async def stop(self, grace_seconds: float | None = None) -> bool:
        """Stop taking work, let what is in flight finish, keep every message accounted for.

        Bounded by ``grace_seconds`` (``[gateway] shutdown_grace_seconds``) whatever the carriers
        or the database do: each stage gets what is left of it, and a stage cut short is logged.
        Returns True when every status change was written and no database work is left running;
        otherwise what could not be written was logged (those messages are sent again later) and
        ``db.busy`` says whether a database call is still stuck (the process must then exit
        without waiting for it).
        """
        grace = self.settings.gateway.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        deadline = time.monotonic() + grace

        async def bounded(stage: str, work: Awaitable, keep: float = 0.0) -> None:
            """Run ``work`` until the deadline less ``keep`` (the later stages' share)."""
            budget = max(0.05, deadline - time.monotonic() - keep)
            try:
                await asyncio.wait_for(work, budget)
            except TimeoutError:
                log.warning("shutdown stage cut short", stage=stage, after_seconds=round(budget, 2))
            except Exception:
                log.exception("shutdown stage failed", stage=stage)

        if self._runner is not None:
            await bounded("http", self._runner.cleanup(), keep=grace * 0.8)
        if self.crm is not None:
            await bounded("crm adapters", self.crm.close(), keep=grace * 0.75)
        if self.notices is not None:
            await bounded("notices", self.notices.stop(), keep=grace * 0.7)
        if self.jobs is not None:
            self.jobs.shutdown()
        if self.pool is not None:
            await bounded("smpp", self.pool.stop(min(5.0, grace * 0.3)), keep=grace * 0.4)
        if self.dispatcher is not None:
            await bounded("dispatcher", self.dispatcher.drain(), keep=grace * 0.3)
        clean = True
        if self.writer is not None:
            clean = await self.writer.stop(max(0.05, deadline - time.monotonic() - min(1.0, grace * 0.1)))
        if self.notices is not None:
            await bounded("callbacks", self.notices.close())
        if self.db is not None:
            clean = self.db.close() and clean
        log.info("gateway stopped", clean=clean)
        return clean
