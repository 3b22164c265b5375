"""The composition root: every object of a running gateway, built once, from the settings.

``build(settings, role)`` constructs what the role needs, each object given what it uses through
its constructor, in dependency order; :class:`Gateway` starts them in that order and stops them in
reverse, within a grace time. Wake-ups (gateway/signals.py) are made first, so producers and
consumers need not know each other. The roles:

- ``api``: the CRM API, the operators' dashboard, health and metrics; stateless, any number of them
  behind a load balancer. No SMPP session.
- ``dispatch``: the carrier links, the dispatcher, the status writer, citizens' SMS, the fan-out,
  reminders, expiry, the quiet-hours release, CRM callbacks and pollers; serves health and metrics.
- ``all``: both, in one process (``smsgw serve`` by default, and ``smsgw demo``).

Over 400 lines: the whole wiring, read top to bottom in construction order, is the point of it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import time as clock_time
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from config.settings import Settings
from crm_adapters.callbacks import CallbackQueue, CallbackSender
from crm_adapters.wiring import CrmAdapters
from scheduler.cluster import Membership
from scheduler.dispatcher import Dispatcher
from scheduler.fanout import FanoutService
from scheduler.jobs import EXPIRE_JOB, DispatchLoop, Expiry, interval_job
from scheduler.quiet_hours import RELEASE_JOB, QuietHoursRelease
from scheduler.reminders import ReminderService
from smpp_client.pool import CarrierPool

from . import clock, link_config
from .domain.composer import Composer
from .domain.notices import NoticePolicy
from .domain.preview import TemplateReport, check_templates
from .domain.status import Priority
from .domain.subscriptions import Catalogue
from .domain.templates import DEFAULT_DIRECTORY, TemplateRenderer
from .domain.timing import QuietHours, ValidityPolicy
from .domain.zones import DEFAULT_ZONES_FILE, load_zones
from .http.api.metrics import MetricsSources, silent_failures
from .http.app import build_api_app, build_ops_app
from .http.client_limits import ClientLimit, ClientLimits
from .http.control import ControlRoom
from .http.dashboard import MOUNT as DASHBOARD_MOUNT
from .http.dashboard import DashboardContext, dashboard_app
from .http.deps import ApiDependencies, OpsDependencies, ReadinessCheck
from .services.citizen_data import CitizenData
from .services.citizen_sms import CitizenInbox
from .services.intake import IntakeService
from .services.link_events import LinkEventHandler, msisdn_e164
from .services.operator_actions import OperatorActions
from .services.operator_auth import OperatorAuth
from .services.reply_texts import ReplyTexts
from .services.subscriptions import SubscriptionService
from .signals import CommitFeed, Signals
from .store import outbox
from .store.db import Database
from .store.intake import IntakeBatcher
from .store.mo_parts import DatabasePartStore
from .store.notifications import ClusterWakeups
from .store.signatures import SeenSignatures
from .store.status_writer import StatusWriter
from .store.zones import sync_zones

log = structlog.get_logger("gateway")

Job = tuple[str, float, Callable[[], Awaitable[object]]]


class Role(StrEnum):
    API = "api"
    DISPATCH = "dispatch"
    ALL = "all"

    @property
    def serves_api(self) -> bool:
        return self is not Role.DISPATCH

    @property
    def runs_links(self) -> bool:
        return self is not Role.API


# --- the domain from the settings -----------------------------------------------------------------


def _hhmm(value: str) -> clock_time:
    hours, minutes = value.split(":")
    return clock_time(int(hours), int(minutes))


def config_path(settings: Settings, value: str | None) -> Path | None:
    """A path from the configuration: relative to the configuration file's folder."""
    return settings.path(value)


def template_directory(settings: Settings) -> Path:
    return config_path(settings, settings.templates.directory) or DEFAULT_DIRECTORY


def build_composer(settings: Settings) -> Composer:
    g = settings.gateway
    return Composer(TemplateRenderer(g.tz, g.short_code, template_directory(settings)), g.transliteration)


def build_policy(settings: Settings) -> NoticePolicy:
    """Everything configured about notices: templates, zones, quiet hours, validity."""
    v = settings.validity
    normal = v.normal_hours if v.normal_hours is not None else settings.dispatch.validity_hours
    validity = ValidityPolicy(
        {
            Priority.EMERGENCY: timedelta(hours=v.emergency_hours),
            Priority.HIGH: timedelta(hours=v.high_hours),
            Priority.NORMAL: timedelta(hours=normal),
            Priority.LOW: timedelta(hours=v.low_hours),
        },
        {name: timedelta(hours=hours) for name, hours in v.by_type.items()},
    )
    q = settings.quiet_hours
    quiet = QuietHours(_hhmm(q.start), _hhmm(q.end), settings.gateway.tz, q.enabled)
    zones = load_zones(config_path(settings, settings.notices.zones_file) or DEFAULT_ZONES_FILE)
    return NoticePolicy(
        build_composer(settings),
        zones=zones,
        quiet=quiet,
        validity=validity,
        max_segments=settings.templates.max_segments,
        enrolment=settings.notices.enrolment,
        emergency_scope=settings.notices.emergency_without_zones,
    )


def callback_queue(settings: Settings) -> CallbackQueue:
    """The CRM callbacks a transaction queues: to every client with a callback URL."""
    return CallbackQueue({c.id: c.callback_url for c in settings.crm_clients if c.callback_url})


def check_notice_templates(settings: Settings, policy: NoticePolicy | None = None) -> list[TemplateReport]:
    """Every notice template against the maximum parts (raises TemplateTooLong)."""
    policy = policy or build_policy(settings)
    return check_templates(policy.composer, policy.max_segments, [z.name for z in policy.zones.zones])


def reply_texts(settings: Settings, policy: NoticePolicy) -> ReplyTexts:
    return ReplyTexts(policy.composer, settings.replies, settings.templates.max_segments)


def check_all_templates(settings: Settings) -> None:
    """Notice and reply templates (raises TemplateTooLong naming every one at fault)."""
    policy = build_policy(settings)
    check_notice_templates(settings, policy)
    reply_texts(settings, policy).check()


# --- a running gateway ----------------------------------------------------------------------------


@dataclass
class Links:
    """The dispatch role's parts."""

    writer: StatusWriter
    link_events: LinkEventHandler
    pool: CarrierPool
    dispatcher: Dispatcher
    loop: DispatchLoop
    fanout: FanoutService
    reminders: ReminderService
    sender: CallbackSender
    inbox: CitizenInbox
    membership: Membership  # heartbeat, takeover of dead processes, the carriers' binds shared


@dataclass
class Gateway:
    settings: Settings
    role: Role
    node_id: str
    db: Database
    policy: NoticePolicy
    signals: Signals
    scheduler: AsyncIOScheduler
    crm: CrmAdapters
    app: web.Application
    intake: IntakeService
    signatures: SeenSignatures
    links: Links | None  # the dispatch role's parts
    dashboard: DashboardContext | None  # the api role's
    jobs: tuple[Job, ...]  # periodic: (id, every seconds, run)
    wakeups: ClusterWakeups | None  # wake-ups to and from the other processes (PostgreSQL)
    _runner: web.AppRunner | None = field(default=None, init=False)
    _site: web.TCPSite | None = field(default=None, init=False)

    # what tests, the demo and benchmarks look at
    @property
    def pool(self) -> CarrierPool | None:
        return self.links.pool if self.links else None

    @property
    def writer(self) -> StatusWriter | None:
        return self.links.writer if self.links else None

    @property
    def inbox(self) -> CitizenInbox | None:
        return self.links.inbox if self.links else None

    @property
    def link_events(self) -> LinkEventHandler | None:
        return self.links.link_events if self.links else None

    @property
    def port(self) -> int:
        server = self._site._server if self._site else None
        return server.sockets[0].getsockname()[1] if server and server.sockets else 0

    @property
    def url(self) -> str:
        return f"http://{self.settings.gateway.host}:{self.port}"

    async def start(self) -> None:
        s = self.settings
        await self.db.run(sync_zones, self.policy.zones, clock.utcnow())  # broadcasts join on zone ids
        if self.links is not None:
            links = self.links
            forgotten = await self.db.run(outbox.forget_routes, list(links.pool.carriers))
            if forgotten:
                log.info("messages routed to carriers no longer configured are routed again", count=forgotten)
            links.writer.start()
            links.pool.start(binds=False)  # the membership opens the binds this process holds
            await links.membership.start()
            if self.wakeups is not None:
                self.wakeups.listen(self.signals.wake)
            links.loop.start()
            links.fanout.start()
            links.reminders.start()
            links.sender.start()
            self.crm.install(self.scheduler)  # the CRM pollers
        for job_id, seconds, run in self.jobs:
            interval_job(self.scheduler, job_id, seconds, run)
        self.scheduler.start()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, s.gateway.host, s.gateway.port)
        await self._site.start()
        carriers = list(self.pool.carriers) if self.pool else []
        log.info(
            "gateway listening", url=self.url, role=self.role.value, node=self.node_id, carriers=carriers
        )

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

        if self.dashboard is not None:
            self.dashboard.closing.set()
        if self._runner is not None:
            await bounded("http", self._runner.cleanup(), keep=grace * 0.8)
        await bounded("signatures", self.signatures.close(), keep=grace * 0.78)
        await bounded("crm adapters", self.crm.close(), keep=grace * 0.75)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        clean = True
        links = self.links
        if links is not None:
            await bounded("cluster", links.membership.stop(), keep=grace * 0.75)
            await bounded("fan-out", links.fanout.stop(), keep=grace * 0.7)
            await bounded("reminders", links.reminders.stop(), keep=grace * 0.7)
            await bounded("callbacks", links.sender.stop(), keep=grace * 0.7)
            await bounded("dispatch loop", links.loop.stop(), keep=grace * 0.7)
            await bounded("smpp", links.pool.stop(min(5.0, grace * 0.3)), keep=grace * 0.4)
            await bounded("dispatcher", links.dispatcher.drain(), keep=grace * 0.3)
            remaining = max(0.05, deadline - time.monotonic() - min(1.0, grace * 0.1))
            clean = await links.writer.stop(remaining)
            # what is still leased is queued again at once, for the others
            await bounded("leave", links.membership.leave())
        if self.wakeups is not None:
            await bounded("wake-ups", self.wakeups.close())
        clean = self.db.close() and clean
        log.info("gateway stopped", clean=clean)
        return clean


def client_limits(settings: Settings) -> ClientLimits:
    """Each CRM client's request rate and requests in progress, counted in this process."""
    return ClientLimits(
        {c.id: ClientLimit(c.requests_per_second, c.burst, c.max_concurrent) for c in settings.crm_clients}
    )


def default_node_id(settings: Settings) -> str:
    return settings.gateway.node_id or f"{socket.gethostname()}:{os.getpid()}"


def lease_token(node_id: str) -> str:
    """This run's token: the lease owner of its claims and its row in ``processes``; unique per
    run, so a process restarted under the same node id never mistakes its predecessor's leases
    for its own."""
    return f"{node_id[:54]}/{secrets.token_hex(4)}"


def build(settings: Settings, role: Role = Role.ALL) -> Gateway:
    """Everything ``role`` runs, built from ``settings``; nothing runs until ``start()``."""
    s = settings
    role = Role(role)
    node_id = default_node_id(s)
    token = lease_token(node_id)
    policy = build_policy(s)
    check_notice_templates(s, policy)  # refuses templates that can exceed the maximum parts
    db = Database(s.database.url, s.database.pool_size)
    wakeups = None if db.is_sqlite else ClusterWakeups(db.url, token, Signals.NAMES)
    signals = Signals(wakeups.publish) if wakeups is not None else Signals()
    callbacks = callback_queue(s)
    commits = CommitFeed()
    signatures = SeenSignatures(db, s.gateway.signature_tolerance_seconds)
    intake = IntakeService(db, policy, IntakeBatcher(db, policy, clock.now), signals, signatures)
    subscriptions = SubscriptionService(
        Catalogue(policy.zones, policy.languages), callbacks.message_status if callbacks.enabled else None
    )
    crm = CrmAdapters(s, db, intake, owner=node_id)
    links = (
        _build_links(s, db, policy, signals, callbacks, commits, crm, subscriptions, token, role)
        if role.runs_links
        else None
    )
    readiness: dict[str, ReadinessCheck] = {}
    jobs: list[Job] = []
    if links is not None:
        pool = links.pool
        readiness["carriers"] = lambda: None if pool.any_bound else "no carrier bound"
        readiness["status_writer"] = links.writer.problem
        readiness["binds"] = links.membership.problem  # holds its share of the carriers' binds
        release = QuietHoursRelease(db, on_released=signals.outbox.announce)
        expiry = Expiry(db, callbacks.message_status if callbacks.enabled else None)
        jobs += [
            (RELEASE_JOB, release.interval, release.run_once),
            (EXPIRE_JOB, s.dispatch.expiry_interval_seconds, expiry.run_once),
        ]
    limits = client_limits(s) if role.serves_api else None
    metrics = MetricsSources(
        links.pool if links else None,
        links.writer if links else None,
        links.dispatcher if links else None,
        links.link_events if links else None,
        links.inbox if links else None,
        links.membership if links else None,
        limits=limits,
    )
    ops = OpsDependencies(db, metrics, readiness)
    dashboard = None
    if role.serves_api:
        actions = OperatorActions(
            db, policy, signals, callbacks, carriers=[c.name for c in s.carriers], on_change=commits.committed
        )
        deps = ApiDependencies(
            db=db,
            policy=policy,
            intake=intake,
            signatures=signatures,
            signals=signals,
            callbacks=callbacks,
            secrets={c.id: c.secret for c in s.crm_clients},
            crm_mappings=crm.mappings,
            actions=actions,
            subscriptions=subscriptions,
            limits=limits or client_limits(s),
            max_body_bytes=s.gateway.max_body_bytes,
            signature_tolerance_seconds=s.gateway.signature_tolerance_seconds,
        )
        app = build_api_app(deps, ops)
        dashboard = DashboardContext(
            db,
            OperatorAuth.from_settings(db, s.dashboard),
            _link_states(links.pool) if links else lambda: [],
            commits.next,
            ControlRoom(
                db,
                actions,
                CitizenData(callbacks.message_status if callbacks.enabled else None),
                s.gateway.tz,
            ),
            _silent_failures(metrics),
        )
        app.add_subapp(DASHBOARD_MOUNT, dashboard_app(dashboard))
    else:
        app = build_ops_app(ops)
    return Gateway(
        s,
        role,
        node_id,
        db,
        policy,
        signals,
        AsyncIOScheduler(timezone="UTC"),
        crm,
        app,
        intake,
        signatures,
        links,
        dashboard,
        tuple(jobs),
        wakeups,
    )


def _build_links(
    s: Settings,
    db: Database,
    policy: NoticePolicy,
    signals: Signals,
    callbacks: CallbackQueue,
    commits: CommitFeed,
    crm: CrmAdapters,
    subscriptions: SubscriptionService,
    token: str,
    role: Role,
) -> Links:
    in_transaction = [callbacks.status_changes] if callbacks.enabled else []
    after_commit = [commits.committed]
    if callbacks.enabled:
        after_commit.append(lambda _changes: signals.callbacks.set())
    carriers = link_config.carrier_configs(s.carriers, s.gateway.short_code)
    receipt_ids = link_config.receipt_id_relations(carriers)  # the link's, the store learns from it
    writer = StatusWriter(
        db,
        receipt_ids=receipt_ids,
        in_transaction=in_transaction,
        after_commit=after_commit,
        owner=token,
        linger_seconds=s.dispatch.status_linger_seconds,
        linger_batch=s.dispatch.status_linger_batch,
    )
    inbox = CitizenInbox(
        db,
        policy,
        subscriptions,
        s.replies,
        max_segments=s.templates.max_segments,
        on_queued=signals.outbox.announce,
        callbacks=callbacks,
        on_callbacks=signals.callbacks.set,
    )
    link_events = LinkEventHandler(
        writer, crm.citizen_inbox(inbox), on_bind=lambda _change: signals.outbox.set()
    )
    pool = CarrierPool(
        carriers,
        link_events,
        on_room=signals.outbox.set,
        router=link_config.router(s.routing, carriers),
        receipt_ids=receipt_ids,
        sender_number=msisdn_e164,
        clock=clock.now,
        mo_parts=DatabasePartStore(db),  # a long MO's parts may come on binds of several processes
    )
    d = s.dispatch
    dispatcher = Dispatcher(
        db,
        pool,
        writer,
        owner=token,
        batch_size=d.batch_size,
        lease_seconds=d.lease_seconds,
        max_attempts=d.max_attempts,
    )
    c = s.callbacks
    return Links(
        writer=writer,
        link_events=link_events,
        pool=pool,
        dispatcher=dispatcher,
        loop=DispatchLoop(dispatcher, signals.outbox, d.interval_seconds),
        fanout=FanoutService(
            db,
            signals.broadcasts,
            _both(signals.outbox.announce, commits.committed),
            chunk=s.notices.fanout_chunk,
        ),
        reminders=ReminderService(db, policy, signals.outbox.announce),
        sender=CallbackSender(
            db,
            {cl.id: cl.secret for cl in s.crm_clients},
            signals.callbacks,
            timeout_seconds=c.timeout_seconds,
            max_attempts=c.max_attempts,
            backoff_seconds=c.backoff_seconds,
            max_backoff_seconds=c.max_backoff_seconds,
            concurrency=c.concurrency,
        ),
        inbox=inbox,
        membership=Membership(
            db,
            pool,
            token,
            role.value,
            heartbeat_seconds=d.heartbeat_seconds,
            stale_seconds=d.process_stale_seconds,
            on_taken_over=signals.outbox.announce,
            alone=db.is_sqlite,  # one dispatch process per SQLite file: any other one is dead
        ),
    )


def _silent_failures(metrics: MetricsSources) -> Callable[[], dict[str, int]]:
    def counts() -> dict[str, int]:
        """What went wrong without stopping anything, counted since this process started."""
        return silent_failures(metrics)

    return counts


def _both(first: Callable[[], object], second: Callable[[], object]) -> Callable[[], None]:
    def call() -> None:
        first()
        second()

    return call


def _link_states(pool: CarrierPool) -> Callable[[], list[dict]]:
    def states() -> list[dict]:
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
            for name, carrier in pool.carriers.items()
            for session in carrier.sessions
        ]

    return states
