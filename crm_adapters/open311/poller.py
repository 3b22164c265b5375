"""Polling a GeoReport v2 endpoint into case events.

A cycle (every ``every_seconds``):

1. **New requests.** GeoReport filters only by creation date (``start_date`` / ``end_date`` on
   ``requested_datetime``, at most 90 days and ``max_results`` rows per query), so the adapter
   scans from where it got to (``created_through``, minus ``overlap_seconds``) to the server's
   "now" in windows of at most ``max_window_days``; a window that comes back full is split in
   halves until each half holds less than the cap (or paged, with ``page_size``, for servers with
   the paging extension). The position moves after each window's events were accepted.
2. **Changes.** ``refetch``: the tracked open requests (and those finished in the last
   ``follow_closed_days``: a reopening) are fetched again by id, ``service_request_id=a,b,c`` in
   batches of ``id_batch``, ``concurrency`` at a time. ``updated_after``: Chicago's parameter,
   scanned in windows like creation. ``servicerequestupdates``: FixMyStreet's feed of updates,
   windowed by update time, each update applied in order (two changes between polls are two
   events). ``auto`` asks for the feed and falls back to ``refetch`` when the server has none.

Clock skew: windows end a second before our clock plus the offset measured from the server's
``Date`` header; ``overlap_seconds`` covers what is left (and requests committed after their
timestamp).
First start: one query reads the server's clock; requests created in the last ``backfill_hours``
(default 0) before it are announced; older ones met later (an overlap, an update) are followed
without a ``case.received``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import structlog

from config.crm_adapters import Open311AdapterSettings
from crm_adapters import state as store
from crm_adapters.base import CycleReport, EventSink, PollingAdapter
from gateway import clock
from gateway.store.db import Database

from . import tracking
from .changes import OPEN, ChangeRules
from .client import Open311Client
from .parsing import MalformedResponse, Open311Error, Record
from .sync import PROCESS_CHUNK, RequestSync

log = structlog.get_logger("open311")

NOT_OFFERED = frozenset({400, 404, 405, 501})
MAX_PAGES = 10_000

Fetch = Callable[[datetime, datetime, int | None], Awaitable[list[Record]]]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "")).replace(tzinfo=None)


def windows(start: datetime, end: datetime, max_days: float) -> list[tuple[datetime, datetime]]:
    """[start, end] in consecutive windows of at most ``max_days`` (whole seconds)."""
    span = timedelta(seconds=int(max_days * 86400))
    out, cursor = [], start.replace(microsecond=0)
    end = end.replace(microsecond=0)
    while cursor < end:
        stop = min(cursor + span, end)
        out.append((cursor, stop))
        cursor = stop
    return out


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class Open311Poller(PollingAdapter):
    kind = "open311"

    def __init__(
        self,
        settings: Open311AdapterSettings,
        db: Database,
        sink: EventSink,
        *,
        city_tz: ZoneInfo,
        owner: str,
        session: aiohttp.ClientSession | None = None,
        now: Callable[[], datetime] = clock.utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        super().__init__(
            settings.adapter_name,
            settings.client,
            db,
            sink,
            every_seconds=settings.every_seconds,
            max_backoff_seconds=settings.max_backoff_seconds,
            owner=owner,
            now=now,
        )
        self.s = settings
        self.rules = ChangeRules(settings, city_tz)
        self.source = f"open311:{self.name}"
        self.sync = RequestSync(self.name, self.client_id, settings, self.rules, db, sink, self.source, now)
        self.mode: str | None = None if settings.updates == "auto" else settings.updates
        self._session = session
        self._own_session = session is None
        self._sleep = sleep
        self._client: Open311Client | None = None
        self._offset: float | None = None
        self._renewed = 0.0

    # --- plumbing -------------------------------------------------------------------------------

    @property
    def client(self) -> Open311Client:
        if self._client is None:
            if self._session is None:
                timeout = aiohttp.ClientTimeout(
                    total=self.s.timeout_seconds, sock_connect=self.s.connect_timeout_seconds
                )
                self._session = aiohttp.ClientSession(
                    timeout=timeout, headers={"User-Agent": "smsgw-open311/1"}
                )
            self._client = Open311Client(self._session, self.s, sleep=self._sleep, now=self.now)
            self._client.clock_offset = self._offset
        return self._client

    async def close(self) -> None:
        await super().close()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None
            self._client = None

    def clock_offset(self) -> float | None:
        return self._client.clock_offset if self._client is not None else self._offset

    def crm_now(self) -> datetime:
        """The server's "now" (our clock plus its measured offset), naive UTC."""
        return self.now() + timedelta(seconds=self.clock_offset() or 0.0)

    def _settled(self) -> datetime:
        """Where a window may end: a second before the server's "now" (the clock is read from a
        whole-second header; requests of the current second may still be arriving)."""
        return self.crm_now() - timedelta(seconds=1)

    def initial_cursor(self, now: datetime) -> dict:
        return {}  # set by the first cycle, on the server's clock (_start)

    async def _start(self, cursor: dict) -> None:
        """The first cycle: one small query reads the server's clock; the adapter starts at the
        server's "now" minus ``backfill_hours``."""
        now = self.now()
        await self.client.created_between(now - timedelta(seconds=1), now)
        start = _iso(self.crm_now() - timedelta(hours=self.s.backfill_hours))
        cursor.update(created_through=start, backfill_from=start)
        await self.save_cursor(cursor)

    async def _renew(self, cursor: dict) -> None:
        if time.monotonic() - self._renewed > 30:
            self._renewed = time.monotonic()
            await self.save_cursor(cursor)

    # --- the cycle ------------------------------------------------------------------------------

    async def cycle(self, held: store.AdapterState, report: CycleReport) -> None:
        if self._client is None and held.clock_offset_seconds is not None:
            self._offset = held.clock_offset_seconds
        queries = self.client.queries
        cursor = dict(held.cursor)
        try:
            if "created_through" not in cursor:
                await self._start(cursor)
            backfill_from = _parse(cursor["backfill_from"])
            seen = await self._scan_created(cursor, backfill_from, report)
            await self._changes(cursor, seen, backfill_from, report)
        except BaseExceptionGroup as group:
            raise _unwrap(group) from None
        finally:
            report.queries = self.client.queries - queries

    async def _scan_created(self, cursor: dict, backfill_from: datetime, report: CycleReport) -> set[str]:
        through = _parse(cursor["created_through"])
        seen: set[str] = set()
        start = through - timedelta(seconds=self.s.overlap_seconds)
        # with the updates feed, the feed tells the changes of tracked requests (each one, in
        # order); the creation scan only brings the new ones
        new_only = self.mode == "servicerequestupdates" or (self.mode is None and self.s.updates == "auto")
        for w_start, w_end in windows(start, max(self._settled(), through), self.s.max_window_days):
            records = await self._window(self.client.created_between, w_start, w_end, report)
            seen |= await self.sync.process(records, report, backfill_from, new_only=new_only)
            if w_end > through:
                cursor["created_through"] = _iso(w_end)
            await self.save_cursor(cursor)
        return seen

    async def _window(
        self, fetch: Fetch, start: datetime, end: datetime, report: CycleReport, paged: bool = True
    ) -> list[Record]:
        """Everything in [start, end]: paged (``page_size``; the updates feed has no paging), or
        split in halves while a query comes back full."""
        if paged and self.s.page_size is not None:
            found: list[Record] = []
            for page in range(1, MAX_PAGES + 1):
                records = await fetch(start, end, page)
                found += records
                if len(records) < self.s.page_size:
                    break
            return found
        records = await fetch(start, end, None)
        if len(records) < self.s.max_results:
            return records
        half = int((end - start).total_seconds() // 2)
        if half < 1:
            note = f"{len(records)} requests within one second at {_iso(start)}: more may exist"
            report.notes.append(note)
            log.warning("open311 window cannot be split further", adapter=self.name, at=_iso(start))
            return records
        middle = start + timedelta(seconds=half)
        first = await self._window(fetch, start, middle, report, paged)
        return first + await self._window(fetch, middle, end, report, paged)

    async def _changes(
        self, cursor: dict, seen: set[str], backfill_from: datetime, report: CycleReport
    ) -> None:
        if self.mode is None:  # auto: does the server offer FixMyStreet's updates?
            try:
                await self._feed(cursor, report)
            except (Open311Error, MalformedResponse) as exc:
                status = exc.status if isinstance(exc, Open311Error) else None
                if status is not None and status not in NOT_OFFERED:
                    raise
                self.mode = "refetch"
                log.info("no servicerequestupdates on this server: re-fetching by id", adapter=self.name)
            else:
                self.mode = "servicerequestupdates"
                return
        if self.mode == "servicerequestupdates":
            await self._feed(cursor, report)
        elif self.mode == "updated_after":
            await self._scan_updated(cursor, backfill_from, report)
        else:
            await self._refetch(cursor, seen, backfill_from, report)

    async def _refetch(
        self, cursor: dict, seen: set[str], backfill_from: datetime, report: CycleReport
    ) -> None:
        """The followed requests again, by id: ``concurrency`` queries in flight; the answers are
        diffed and saved about PROCESS_CHUNK requests at a time (few transactions), the next
        group's queries running meanwhile."""
        ids = await self.db.run(tracking.followed, self.name, self.rules.follow_until(self.now()))
        ids = [i for i in ids if i not in seen]
        per_group = max(1, PROCESS_CHUNK // self.s.id_batch) * self.s.id_batch
        groups = [ids[i : i + per_group] for i in range(0, len(ids), per_group)]
        gate = asyncio.Semaphore(self.s.concurrency)

        async def fetch(batch: list[str]) -> list[Record]:
            async with gate:
                return await self.client.by_ids(batch)

        async def fetch_group(group: list[str]) -> list[Record]:
            batches = [group[i : i + self.s.id_batch] for i in range(0, len(group), self.s.id_batch)]
            async with asyncio.TaskGroup() as tasks:
                running = [tasks.create_task(fetch(batch)) for batch in batches]
            return [record for task in running for record in task.result()]

        pending = asyncio.ensure_future(fetch_group(groups[0])) if groups else None
        try:
            for i, group in enumerate(groups):
                records = await pending
                pending = asyncio.ensure_future(fetch_group(groups[i + 1])) if i + 1 < len(groups) else None
                await self.sync.process(records, report, backfill_from, only=set(group))
                await self._renew(cursor)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending

    async def _scan_updated(self, cursor: dict, backfill_from: datetime, report: CycleReport) -> None:
        through = _parse(cursor.get("updates_through") or cursor["created_through"])
        start = through - timedelta(seconds=self.s.overlap_seconds)
        for w_start, w_end in windows(start, max(self._settled(), through), self.s.max_window_days):
            records = await self._window(self.client.updated_between, w_start, w_end, report)
            await self.sync.process(records, report, backfill_from)
            if w_end > through:
                cursor["updates_through"] = _iso(w_end)
            await self.save_cursor(cursor)

    async def _feed(self, cursor: dict, report: CycleReport) -> None:
        through = _parse(cursor.get("updates_through") or cursor["created_through"])
        start = through - timedelta(seconds=self.s.overlap_seconds)

        async def fetch(a: datetime, b: datetime, page: int | None) -> list[Record]:
            return await self.client.updates_between(a, b)

        for w_start, w_end in windows(start, max(self._settled(), through), self.s.max_window_days):
            updates = await self._window(fetch, w_start, w_end, report, paged=False)
            await self.sync.apply_updates(updates, report)
            if w_end > through:
                cursor["updates_through"] = _iso(w_end)
            await self.save_cursor(cursor)

    # --- ESTADO <folio> -------------------------------------------------------------------------

    def fresh_as_of(self, copy: tracking.Copy) -> datetime:
        """When the gateway's copy of a request was last known to match the CRM."""
        followed = self.mode in ("servicerequestupdates", "updated_after") or (
            copy.phase == OPEN
            or (copy.finished_at is not None and copy.finished_at >= self.rules.follow_until(self.now()))
        )
        if followed and copy.adapter_success_at is not None:
            return max(copy.seen_at, copy.adapter_success_at)
        return copy.seen_at

    async def refresh(self, request_id: str) -> bool:
        """Fetch one request now and apply what changed (a citizen asked for its status)."""
        if self._closed:
            return False
        report = CycleReport(self.name, self.now())
        records = await asyncio.wait_for(self.client.one(request_id), self.s.refresh_timeout_seconds)
        await self.sync.process(records, report, datetime.min, only={request_id})
        return bool(records)
