"""Assembles a running gateway from its settings: database, SMPP links, scheduler, HTTP API."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta

import structlog
from aiohttp import web

from config.settings import Settings
from scheduler.dispatcher import Dispatcher
from scheduler.jobs import OutboxJobs
from smpp_client.pool import CarrierPool

from .api.context import ApiContext
from .app import build_app
from .domain.composer import Composer
from .domain.templates import TemplateRenderer
from .inbound import InboundHandler
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
        self.writer = StatusWriter(self.db)
        self.writer.start()
        inbound = InboundHandler(self.writer)
        self.pool = CarrierPool(s.carriers, s.gateway.short_code, inbound.on_deliver)
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
        for carrier in self.pool.carriers.values():
            for session in carrier.sessions:
                session.bound_callback = self.jobs.wake
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
        )
        self._runner = web.AppRunner(build_app(ctx), access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, s.gateway.host, s.gateway.port)
        await self._site.start()
        log.info("gateway listening", url=self.url, node=self.node_id, carriers=list(self.pool.carriers))

    async def stop(self) -> None:
        """Stop taking work, let what is in flight finish, keep every message accounted for."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self.jobs is not None:
            self.jobs.shutdown()
        if self.pool is not None:
            await self.pool.stop()
        if self.dispatcher is not None:
            await asyncio.wait_for(self.dispatcher.drain(), 10)
        if self.writer is not None:
            await self.writer.stop()
        if self.db is not None:
            self.db.close()
        log.info("gateway stopped")
