"""What a GeoReport request's change means for the citizen: the case events it becomes.

GeoReport knows two statuses, ``open`` and ``closed`` ("closed: it has been resolved"); FixMyStreet's
updates add states (``in_progress``, ``fixed``, ``duplicate``…). Each request is in one *phase*:

- ``closed`` when its state is one of ``closed_states`` (duplicate, not the council's
  responsibility, no further action…), or when it is in ``resolved_states`` but its
  ``status_notes`` match one of ``closing_notes`` ("Duplicate request.", "improcedente"…): it ended
  without being solved;
- ``resolved`` when its state is one of ``resolved_states`` (``closed``, ``fixed``);
- ``open`` otherwise.

Against the copy last seen (:class:`Snapshot`):

| seen | event |
| --- | --- |
| a new request, open | ``case.received`` |
| a new request, already finished | ``case.received``, then ``case.resolved`` / ``case.closed`` |
| open -> resolved | ``case.resolved`` (resolution date: ``updated_datetime``, city time) |
| open or resolved -> closed | ``case.closed`` |
| closed -> resolved | ``case.resolved`` |
| resolved or closed -> open | ``case.status_changed`` ("Reabierta") |
| open; state, ``status_notes``, agency or ``expected_datetime`` changed | ``case.status_changed`` |
| finished, only notes or dates changed | nothing (the citizen was told it ended) |

``case.status`` is the state in words (``status_map``) with what changed: the notes
("En proceso: cuadrilla asignada"), else the agency ("Abierta, turnada a Obras"), else the expected
date. Event ids are ``<id_prefix>-<request id>-<what>-<when>``, ``<when>`` being the request's
``updated_datetime`` (UTC, compact) or, for a server that does not keep it, a digest of what was
seen; an update of the FixMyStreet feed uses its ``update_id``; ``case.received`` uses
``requested_datetime`` (one per request). The same observation always gives
the same id, so seeing it again (a restart, an overlapping window) is a duplicate the intake
ignores.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from config.crm_adapters import Open311AdapterSettings

from .parsing import Record, parse_datetime

OPEN, RESOLVED, CLOSED = "open", "resolved", "closed"
FINISHED = (RESOLVED, CLOSED)
_FOLIO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_ID_PART = re.compile(r"[^A-Za-z0-9._-]")
STATUS_MAX, CATEGORY_MAX, NOTES_MAX, AGENCY_MAX = 120, 120, 2000, 200


class Unusable(ValueError):
    """A record that cannot be followed (no id yet, an id that cannot be a folio, bad dates)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A request as last seen (a row of crm_tracked_requests)."""

    request_id: str
    folio: str
    phase: str
    state: str
    notes: str | None
    agency: str | None
    expected: str | None  # UTC ISO
    updated: str | None  # UTC ISO
    service_name: str | None
    requested_at: datetime | None  # naive UTC
    announced: bool  # case.received sent, or deliberately not (older than the backfill)
    finished_at: datetime | None = None  # naive UTC, gateway clock


@dataclass(frozen=True, slots=True)
class Observed:
    """A request as the CRM shows it now."""

    request_id: str
    state: str
    notes: str | None
    agency: str | None
    expected: str | None
    updated: str | None
    service_name: str | None
    requested_at: datetime | None
    record: Record


def _text(value: object, limit: int) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = " ".join(str(value).split())
    return text[:limit] or None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def lookup(record: Record, path: str) -> object:
    """``a.b`` in a record; None when absent."""
    value: object = record
    for name in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


class ChangeRules:
    """The settings of one adapter applied to what it sees."""

    def __init__(self, settings: Open311AdapterSettings, city_tz: ZoneInfo):
        self.s = settings
        self.city_tz = city_tz
        self.server_tz: tzinfo = ZoneInfo(settings.server_timezone) if settings.server_timezone else city_tz
        self._closing = [re.compile(p, re.IGNORECASE) for p in settings.closing_notes]

    # --- reading a record ------------------------------------------------------------------------

    def folio(self, request_id: str) -> str:
        folio = self.s.folio_prefix + request_id
        if len(folio) > 64 or not _FOLIO.match(folio):
            raise Unusable(f"request id {request_id!r} cannot be a folio (letters, digits, . _ / -)")
        return folio

    def observe(self, record: Record) -> Observed:
        rid = record.get("service_request_id")
        if rid is None or isinstance(rid, dict | list) or not str(rid).strip():
            raise Unusable("no service_request_id yet")
        rid = str(rid).strip()
        state = (_text(record.get("status"), 64) or "open").lower()
        try:
            requested = parse_datetime(record.get("requested_datetime"), self.server_tz)
            updated = parse_datetime(record.get("updated_datetime"), self.server_tz)
            expected = parse_datetime(record.get("expected_datetime"), self.server_tz)
        except ValueError as exc:
            raise Unusable(f"request {rid}: a date is not a w3c datetime: {exc}") from None
        return Observed(
            request_id=rid,
            state=state,
            notes=_text(record.get("status_notes"), NOTES_MAX),
            agency=_text(record.get("agency_responsible"), AGENCY_MAX),
            expected=_iso(expected),
            updated=_iso(updated),
            service_name=_text(record.get("service_name"), CATEGORY_MAX),
            requested_at=requested.replace(tzinfo=None) if requested else None,
            record=record,
        )

    def phase(self, state: str, notes: str | None) -> str:
        if state in self.s.closed_states:
            return CLOSED
        if state in self.s.resolved_states:
            if notes and any(p.search(notes) for p in self._closing):
                return CLOSED
            return RESOLVED
        return OPEN

    # --- what changed ----------------------------------------------------------------------------

    def _words(self, state: str) -> str:
        return self.s.status_map.get(state) or state.replace("_", " ").capitalize()

    def status_text(self, snap: Snapshot, before: Snapshot | None, reopened: bool = False) -> str:
        base = self._words("reopened" if reopened else snap.state)
        if snap.notes and (before is None or snap.notes != before.notes or snap.state != before.state):
            return _clip(f"{base}: {snap.notes}", STATUS_MAX)
        if before is not None and snap.agency and snap.agency != before.agency:
            return _clip(f"{base}, {self.s.agency_text.format(agency=snap.agency)}", STATUS_MAX)
        if before is not None and snap.expected and snap.expected != before.expected:
            when = datetime.fromisoformat(snap.expected.replace("Z", "+00:00")).astimezone(self.city_tz)
            return _clip(f"{base}, {self.s.expected_text.format(date=f'{when:%d/%m/%Y}')}", STATUS_MAX)
        return _clip(base, STATUS_MAX)

    def _local_date(self, iso: str | None, fallback: datetime) -> date:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00")) if iso else fallback
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo("UTC"))
        return moment.astimezone(self.city_tz).date()

    def _event_id(self, rid: str, what: str, stamp: str) -> str:
        rid_part = _ID_PART.sub("_", rid)
        event_id = f"{self.s.id_prefix}-{rid_part}-{what}-{stamp}"
        if len(event_id) > 128 or rid_part != rid:
            digest = hashlib.sha256(f"{rid}\x00{what}\x00{stamp}".encode()).hexdigest()[:24]
            event_id = f"{self.s.id_prefix}-{rid_part[:48]}-{what}-{digest}"
        return event_id

    @staticmethod
    def _stamp(snap: Snapshot) -> str:
        if snap.updated:
            return snap.updated.replace("-", "").replace(":", "")
        seen = "\x00".join(x or "" for x in (snap.state, snap.notes, snap.agency, snap.expected))
        return "h" + hashlib.sha256(seen.encode()).hexdigest()[:16]

    def snapshot(self, obs: Observed, before: Snapshot | None, now: datetime) -> Snapshot:
        phase = self.phase(obs.state, obs.notes)
        finished_at = None
        if phase in FINISHED:
            finished_at = before.finished_at if before is not None and before.phase in FINISHED else now
        return Snapshot(
            request_id=obs.request_id,
            folio=before.folio if before is not None else self.folio(obs.request_id),
            phase=phase,
            state=obs.state,
            notes=obs.notes,
            agency=obs.agency,
            expected=obs.expected,
            updated=obs.updated,
            service_name=obs.service_name,
            requested_at=obs.requested_at or (before.requested_at if before else None),
            announced=before.announced if before is not None else False,
            finished_at=finished_at,
        )

    def apply_update(self, update: Record, before: Snapshot, now: datetime) -> tuple[Snapshot, str] | None:
        """A FixMyStreet ``request_update`` over the copy last seen: (the new copy, the id stamp),
        or None when it is not newer than what was seen."""
        try:
            updated = _iso(parse_datetime(update.get("updated_datetime"), self.server_tz))
        except ValueError:
            return None
        if updated is not None and before.updated is not None and updated <= before.updated:
            return None
        state = (_text(update.get("status"), 64) or before.state).lower()
        notes = _text(update.get("description"), NOTES_MAX)
        phase = self.phase(state, notes)
        finished_at = None
        if phase in FINISHED:
            finished_at = before.finished_at if before.phase in FINISHED else now
        snap = replace(
            before,
            phase=phase,
            state=state,
            notes=notes if notes is not None else before.notes,
            updated=updated or before.updated,
            finished_at=finished_at,
        )
        update_id = _text(update.get("update_id"), 64)
        return snap, ("u" + update_id if update_id else self._stamp(snap))

    def events(
        self,
        snap: Snapshot,
        before: Snapshot | None,
        msisdn: str | None,
        *,
        announce: bool = True,
        stamp: str | None = None,
        now: datetime,
    ) -> tuple[list[dict], Snapshot]:
        """The events for going from ``before`` to ``snap``, and the copy to keep.

        ``msisdn`` None: the citizen's number is not known; nothing can be sent, the copy is kept
        (and case.received follows when a number turns up while the request is open).
        ``announce`` False: a request older than the backfill, followed without a case.received.
        """
        stamp = stamp or self._stamp(snap)
        rid = snap.request_id
        out: list[tuple[str, str, str]] = []  # (what, type, status text)
        if before is None or not before.announced:
            if not announce:
                return [], replace(snap, announced=True)
            if msisdn is None:
                return [], replace(snap, announced=False)
            if before is None or snap.phase == OPEN:
                out.append(("received", "case.received", self.status_text(snap, None)))
            if snap.phase != OPEN:
                what = "resolved" if snap.phase == RESOLVED else "closed"
                out.append((what, f"case.{what}", self.status_text(snap, None)))
        elif snap.phase != before.phase:
            if snap.phase == OPEN:
                out.append(("reopened", "case.status_changed", self.status_text(snap, before, reopened=True)))
            else:
                what = "resolved" if snap.phase == RESOLVED else "closed"
                out.append((what, f"case.{what}", self.status_text(snap, before)))
        elif snap.phase == OPEN and (
            (snap.state, snap.notes, snap.agency, snap.expected)
            != (before.state, before.notes, before.agency, before.expected)
        ):
            out.append(("status", "case.status_changed", self.status_text(snap, before)))
        if msisdn is None:
            return [], snap
        payloads = []
        for what, event_type, status in out:
            case: dict = {"folio": snap.folio, "status": status}
            if snap.service_name:
                case["category"] = snap.service_name
            if event_type == "case.resolved":
                case["resolution_date"] = self._local_date(snap.updated, now).isoformat()
            occurred = snap.updated
            if what == "received" and snap.requested_at is not None:
                occurred = _iso(snap.requested_at)
            citizen: dict = {"msisdn": msisdn}
            if self.s.language:
                citizen["language"] = self.s.language
            when = stamp
            if what == "received":  # once per request, whatever was seen with it
                when = (_iso(snap.requested_at) or "0").replace("-", "").replace(":", "")
            payload: dict = {"id": self._event_id(rid, what, when), "type": event_type}
            if occurred:
                payload["occurred_at"] = occurred
            payload["case"] = case
            payload["citizen"] = citizen
            payloads.append(payload)
        return payloads, replace(snap, announced=True)

    def follow_until(self, now: datetime) -> datetime:
        """Finished requests that finished after this are still re-fetched (a reopening)."""
        return now - timedelta(days=self.s.follow_closed_days)
