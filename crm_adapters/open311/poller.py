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

Clock skew: windows end at our clock plus the offset measured from the server's ``Date`` header;
``overlap_seconds`` covers what is left (and requests committed after their timestamp).
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
from crm_adapters.base import CycleReport, EventSink, PollingAdapter, submit_chains
from gateway import clock
from gateway.domain.phone import InvalidNumber, normalize_msisdn
from gateway.store.db import Database

from . import tracking
from .changes import OPEN, ChangeRules, Observed, Snapshot, Unusable, lookup
from .client import Open311Client
from .parsing import MalformedResponse, Open311Error, Record

log = structlog.get_logger("open311")

PROCESS_CHUNK = 1000  # records read, diffed and saved per transaction
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


def _same(a: Snapshot, b: Snapshot) -> bool:
    return (a.phase, a.state, a.notes, a.agency, a.expected, a.updated, a.service_name) == (
        b.phase,
        b.state,
        b.notes,
        b.agency,
        b.expected,
        b.updated,
        b.service_name,
    )


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
        for w_start, w_end in windows(start, max(self.crm_now(), through), self.s.max_window_days):
            records = await self._window(self.client.created_between, w_start, w_end, report)
            seen |= await self._process(records, report, backfill_from, new_only=new_only)
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
                await self._process(records, report, backfill_from, only=set(group))
                await self._renew(cursor)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending

    async def _scan_updated(self, cursor: dict, backfill_from: datetime, report: CycleReport) -> None:
        through = _parse(cursor.get("updates_through") or cursor["created_through"])
        start = through - timedelta(seconds=self.s.overlap_seconds)
        for w_start, w_end in windows(start, max(self.crm_now(), through), self.s.max_window_days):
            records = await self._window(self.client.updated_between, w_start, w_end, report)
            await self._process(records, report, backfill_from)
            if w_end > through:
                cursor["updates_through"] = _iso(w_end)
            await self.save_cursor(cursor)

    async def _feed(self, cursor: dict, report: CycleReport) -> None:
        through = _parse(cursor.get("updates_through") or cursor["created_through"])
        start = through - timedelta(seconds=self.s.overlap_seconds)

        async def fetch(a: datetime, b: datetime, page: int | None) -> list[Record]:
            return await self.client.updates_between(a, b)

        for w_start, w_end in windows(start, max(self.crm_now(), through), self.s.max_window_days):
            updates = await self._window(fetch, w_start, w_end, report, paged=False)
            await self._apply_updates(updates, report)
            if w_end > through:
                cursor["updates_through"] = _iso(w_end)
            await self.save_cursor(cursor)

    # --- turning records into events ------------------------------------------------------------

    def _observe(
        self, records: list[Record], report: CycleReport, only: set[str] | None
    ) -> dict[str, Observed]:
        observed: dict[str, Observed] = {}
        for record in records:
            report.records += 1
            try:
                obs = self.rules.observe(record)
            except Unusable as exc:
                if "service_request_id" in str(exc):
                    report.without_id += 1
                else:
                    report.unusable += 1
                    log.warning("open311 request skipped", adapter=self.name, reason=str(exc))
                continue
            if only is not None and obs.request_id not in only:
                continue  # a server that ignored service_request_id: not what was asked
            previous = observed.get(obs.request_id)
            if previous is None or (obs.updated or "") >= (previous.updated or ""):
                observed[obs.request_id] = obs
        return observed

    def _number_in(self, obs: Observed) -> tuple[str | None, str | None]:
        """(the number in the request's own field, the phone directory key to look up)."""
        if self.s.phone_field:
            raw = lookup(obs.record, self.s.phone_field)
            if raw is not None and not isinstance(raw, dict | list) and str(raw).strip():
                try:
                    return normalize_msisdn(str(raw)), None
                except InvalidNumber:
                    pass
        if self.s.phone_lookup_field:
            key = lookup(obs.record, self.s.phone_lookup_field)
            if key is not None and not isinstance(key, dict | list) and str(key).strip():
                return None, str(key).strip()
        return None, None

    def _directory(self, conn, keys: list[str], folios: list[str]) -> tuple[dict, dict]:
        numbers = store.phone_numbers(conn, self.client_id, keys) if keys else {}
        owners = tracking.citizens_of(conn, folios) if folios else {}
        return numbers, owners

    async def _numbers(self, pairs: list[tuple[Observed, Snapshot | None]]) -> dict[str, str]:
        """The citizen's number for each request: its own field, else the phone directory, else
        the citizen of the case the gateway already has under its folio."""
        found: dict[str, str] = {}
        keys: dict[str, str] = {}
        folios: dict[str, str] = {}
        for obs, before in pairs:
            number, key = self._number_in(obs)
            if number is not None:
                found[obs.request_id] = number
                continue
            if key is not None:
                keys[obs.request_id] = key
            folio = before.folio if before is not None else self._folio(obs.request_id)
            if folio is not None:
                folios[obs.request_id] = folio
        if keys or folios:
            numbers, owners = await self.db.run(
                self._directory, sorted(set(keys.values())), sorted(set(folios.values()))
            )
            for rid in {*keys, *folios} - set(found):
                number = numbers.get(keys.get(rid, "")) or owners.get(folios.get(rid, ""))
                if number is not None:
                    found[rid] = number
        return found

    def _folio(self, rid: str) -> str | None:
        try:
            return self.rules.folio(rid)
        except Unusable:
            return None

    async def _process(
        self,
        records: list[Record],
        report: CycleReport,
        backfill_from: datetime,
        only: set[str] | None = None,
        new_only: bool = False,
    ) -> set[str]:
        """Diff what was read against the copies kept, submit the events, save the copies;
        returns the ids looked at (``new_only``: only requests not tracked yet)."""
        observed = self._observe(records, report, only)
        items = list(observed.values())
        done: set[str] = set()
        for i in range(0, len(items), PROCESS_CHUNK):
            done |= await self._process_chunk(items[i : i + PROCESS_CHUNK], report, backfill_from, new_only)
        return done

    async def _process_chunk(
        self, items: list[Observed], report: CycleReport, backfill_from: datetime, new_only: bool
    ) -> set[str]:
        befores = await self.db.run(tracking.tracked, self.name, [o.request_id for o in items])
        now = self.now()
        todo: list[tuple[Observed, Snapshot, Snapshot | None]] = []
        done: set[str] = set()
        for obs in items:
            before = befores.get(obs.request_id)
            if new_only and before is not None:
                continue
            done.add(obs.request_id)
            try:
                snap = self.rules.snapshot(obs, before, now)
            except Unusable as exc:
                report.unusable += 1
                log.warning("open311 request skipped", adapter=self.name, reason=str(exc))
                continue
            if before is not None and _same(snap, before) and before.announced:
                continue  # the common case: nothing to do, no number needed, nothing written
            todo.append((obs, snap, before))
        numbers = await self._numbers([(obs, before) for obs, _, before in todo]) if todo else {}
        chains: list[list[dict]] = []
        changed: list[tuple[Snapshot, bool]] = []
        for obs, snap, before in todo:
            msisdn = numbers.get(obs.request_id)
            if before is not None and _same(snap, before) and msisdn is None:
                continue  # still no number to announce it to
            announce = before is not None or obs.requested_at is None or obs.requested_at >= backfill_from
            events, kept = self.rules.events(snap, before, msisdn, announce=announce, now=now)
            if before is None:
                report.new += 1
            elif not _same(snap, before):
                report.changed += 1
            if msisdn is None and announce:
                report.without_phone += 1
            chains.append(events)
            changed.append((kept, before is None))
        await submit_chains(self.sink, self.client_id, chains, self.source, report)
        if changed:
            await self.db.run(tracking.save, self.name, changed, now)
        return done

    async def _apply_updates(self, updates: list[Record], report: CycleReport) -> None:
        report.records += len(updates)
        by_request: dict[str, list[Record]] = {}
        for update in updates:
            rid = update.get("service_request_id")
            if rid is None or isinstance(rid, dict | list) or not str(rid).strip():
                report.without_id += 1
                continue
            by_request.setdefault(str(rid).strip(), []).append(update)
        if not by_request:
            return
        rids = sorted(by_request)
        befores = await self.db.run(tracking.tracked, self.name, rids)
        keys = sorted(befores) if self.s.phone_lookup_field == "service_request_id" else []
        numbers, owners = await self.db.run(self._directory, keys, [b.folio for b in befores.values()])
        now = self.now()
        chains, changed = [], []
        for rid in rids:
            before = befores.get(rid)
            if before is None:
                continue  # not followed: created before this adapter's horizon
            msisdn = numbers.get(rid) or owners.get(before.folio)
            ordered = sorted(
                by_request[rid],
                key=lambda u: (str(u.get("updated_datetime") or ""), str(u.get("update_id") or "")),
            )
            snap, chain = before, []
            for update in ordered:
                applied = self.rules.apply_update(update, snap, now)
                if applied is None:
                    continue
                new_snap, stamp = applied
                events, snap = self.rules.events(new_snap, snap, msisdn, stamp=stamp, now=now)
                chain += events
            if snap != before:
                report.changed += 1
                if msisdn is None:
                    report.without_phone += 1
                chains.append(chain)
                changed.append((snap, False))
        await submit_chains(self.sink, self.client_id, chains, self.source, report)
        if changed:
            await self.db.run(tracking.save, self.name, changed, now)

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
        report = CycleReport(self.name, self.now())
        records = await asyncio.wait_for(self.client.one(request_id), self.s.refresh_timeout_seconds)
        await self._process(records, report, datetime.min, only={request_id})
        return bool(records)
