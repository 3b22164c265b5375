"""What was read from a GeoReport server, applied: each request diffed against the copy the
adapter keeps, the citizen's number found, the events submitted to the intake, the copies saved;
about PROCESS_CHUNK requests per transaction, and nothing written for a request that did not change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from config.crm_adapters import Open311AdapterSettings
from crm_adapters import state as store
from crm_adapters.base import CycleReport, EventSink, submit_chains
from gateway.domain.phone import InvalidNumber, normalize_msisdn
from gateway.store.db import Database

from . import tracking
from .changes import ChangeRules, Observed, Snapshot, Unusable, lookup
from .parsing import Record

log = structlog.get_logger("open311")

PROCESS_CHUNK = 1000  # requests read, diffed and saved per transaction


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


class RequestSync:
    def __init__(
        self,
        name: str,
        client_id: str,
        settings: Open311AdapterSettings,
        rules: ChangeRules,
        db: Database,
        sink: EventSink,
        source: str,
        now: Callable[[], datetime],
    ):
        self.name = name
        self.client_id = client_id
        self.s = settings
        self.rules = rules
        self.db = db
        self.sink = sink
        self.source = source
        self.now = now

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

    async def process(
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

    async def apply_updates(self, updates: list[Record], report: CycleReport) -> None:
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
