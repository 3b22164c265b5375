"""Who receives which alerts: the one place that subscribes, unsubscribes and opts citizens out.

The citizens' SMS (gateway/services/citizen_sms.py), the CRM API (gateway/http/api/subscriptions.py)
and the CSV import (gateway/services/subscriber_import.py) all go through
:class:`SubscriptionService`, inside their own transaction: the SMS path stores the MO, acts,
records the ledger and queues the reply in one commit. The rules:

- Topics and zones as :mod:`gateway.domain.subscriptions` reads them; no topic is every topic, no
  zone every zone.
- A citizen who opted out is subscribed again only with their explicit consent: an SMS ALTA /
  START is; the API must say ``"consent": "explicit"``; an import never is (the row is skipped).
- An opt-out removes every subscription and cancels every message still waiting (their CRMs get
  the ``cancelled`` status callbacks, queued in the same transaction).
- Every change is a consent-ledger row naming its :class:`Origin`: channel (sms, api, import), the
  carrier or the CRM client, and the raw SMS, request or CSV row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from gateway.domain.subscriptions import Catalogue, SubscriberRow, Subscription, Subscriptions
from gateway.domain.zones import Zone
from gateway.store import citizens, consent, subscriptions
from gateway.store.bulk import BulkWriter
from gateway.store.consent import Citizen, OptOut, StatusHook
from gateway.store.zones import ids_for


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a change came from, as the consent ledger records it."""

    channel: str  # consent.SMS, consent.API, consent.IMPORT
    raw: str | None = None  # the SMS, the request, the CSV row
    carrier: str | None = None
    client_id: str | None = None
    mobile_message_id: int | None = None


class ConsentRequired(Exception):
    """The citizen opted out: only their own explicit request subscribes them again."""


@dataclass(frozen=True, slots=True)
class Subscribed:
    added: int  # (citizen, topic, zone) rows that were not there
    opted_in: bool  # the citizen had opted out and consented again
    topics: tuple[str, ...]
    zones: tuple[Zone, ...]  # empty: every zone
    zone_ids: tuple[int, ...]


class ImportRow(NamedTuple):
    """A validated CSV row (:class:`SubscriberRow`) and where it was: its line and its text (the
    ledger's raw). A plain tuple: thousands are held per chunk."""

    line: int
    raw: str
    msisdn: str
    topics: tuple[str, ...]
    zones: tuple[str, ...]  # as written; empty: every zone
    language: str | None

    @classmethod
    def of(cls, line: int, raw: str, row: SubscriberRow) -> ImportRow:
        return cls(line, raw, row.msisdn, row.topics, row.zones, row.language)


@dataclass(slots=True)
class Imported:
    """What a chunk of import rows did."""

    applied: list[ImportRow] = field(default_factory=list)  # rows of citizens who had not opted out
    opted_out: list[int] = field(default_factory=list)  # lines skipped: the number opted out
    rows_changed: int = 0  # applied rows that added a citizen, a subscription or a language
    citizens_added: int = 0
    subscriptions_added: int = 0
    languages_changed: int = 0
    consent_events: int = 0


class SubscriptionService:
    """Subscriptions and consent, in the caller's transaction (``conn``)."""

    def __init__(self, catalogue: Catalogue, status_hook: StatusHook | None = None):
        self.catalogue = catalogue
        self.status_hook = status_hook  # the status callbacks of messages an opt-out cancels

    # --- citizens -----------------------------------------------------------------------------

    def citizen(self, conn: Connection, msisdn: str, language: str, now: datetime) -> Citizen:
        """The citizen with this number (created with ``language`` when new), locked for the rest
        of the transaction so one number's requests are handled one at a time."""
        return consent.lock_citizen(conn, msisdn, language, now)

    def find(self, conn: Connection, msisdn: str) -> Citizen | None:
        return consent.find_citizen(conn, msisdn)

    def view(self, conn: Connection, msisdn: str, **changed: int | bool) -> Subscriptions:
        """The citizen's subscriptions and opt-out state; ``changed``: what the request did."""
        citizen = consent.find_citizen(conn, msisdn)
        if citizen is None:
            return Subscriptions(
                msisdn=msisdn, known=False, opted_out=False, language=None, subscriptions=[], **changed
            )
        return Subscriptions(
            msisdn=msisdn,
            known=True,
            opted_out=citizen.opted_out,
            opted_out_at=citizen.opted_out_at,
            language=citizen.language,
            subscriptions=[
                Subscription(topic=s["topic"], zone=s["zone"], cp=s["cp"], zone_id=s["zone_id"])
                for s in subscriptions.subscriptions_of(conn, citizen.id)
            ],
            **changed,
        )

    # --- one citizen's request ------------------------------------------------------------------

    def subscribe(
        self,
        conn: Connection,
        citizen: Citizen,
        topics: Sequence[str],
        zones: Sequence[Zone],
        origin: Origin,
        now: datetime,
        *,
        explicit: bool,
        language: str | None = None,
    ) -> Subscribed:
        """Subscribe to every (topic, zone); no zones: every zone. Raises ConsentRequired for a
        citizen who opted out unless ``explicit``. ``language``: the citizen's from now on."""
        if citizen.opted_out and not explicit:
            raise ConsentRequired(citizen.msisdn)
        if language and language != citizen.language and not citizen.created:
            citizens.set_language(conn, citizen.id, language, now)
            citizen.language = language
        changes = []
        opted_in = citizen.opted_out and consent.opt_in(conn, citizen.id, now)
        if opted_in:
            citizen.opted_out = False
            changes.append({"action": consent.OPT_IN})
        zone_ids = ids_for(conn, self.catalogue.zones, [z.key for z in zones], now) if zones else []
        added = sum(subscriptions.subscribe(conn, citizen.id, t, zone_ids, now) for t in topics)
        changes.append(
            {
                "action": consent.SUBSCRIBE,
                "topics": list(topics),
                "zones": [z.name for z in zones] if zones else None,
            }
        )
        self._record(conn, citizen, changes, origin, now)
        return Subscribed(added, bool(opted_in), tuple(topics), tuple(zones), tuple(zone_ids))

    def unsubscribe(
        self, conn: Connection, citizen: Citizen, topic: str, origin: Origin, now: datetime
    ) -> int:
        """Remove one topic in every zone; returns how many subscriptions were removed."""
        removed = subscriptions.unsubscribe(conn, citizen.id, topic)
        self._record(conn, citizen, [{"action": consent.UNSUBSCRIBE, "topics": [topic]}], origin, now)
        return removed

    def opt_out(self, conn: Connection, citizen: Citizen, origin: Origin, now: datetime) -> OptOut:
        """Nothing more is sent to the citizen but replies to their own SMS: every subscription
        removed, every waiting message cancelled (with its CRM's status callback)."""
        result = consent.opt_out(conn, citizen, now, self.status_hook)
        change = {"action": consent.OPT_OUT, "topics": result.topics_removed or None}
        self._record(conn, citizen, [change], origin, now)
        return result

    def _record(
        self, conn: Connection, citizen: Citizen, changes: list[dict], origin: Origin, now: datetime
    ) -> None:
        common = {
            "citizen_id": citizen.id,
            "channel": origin.channel,
            "carrier": origin.carrier,
            "client_id": origin.client_id,
            "raw": origin.raw,
            "mobile_message_id": origin.mobile_message_id,
            "at": now,
        }
        consent.record_many(conn, [{**common, **change} for change in changes])

    # --- many rows at once (the import) -----------------------------------------------------------

    def import_rows(
        self, conn: Connection, rows: Sequence[ImportRow], zone_ids: Mapping[str, int], now: datetime
    ) -> Imported:
        """Subscribe the rows' citizens, set-based: a handful of statements for thousands of rows.

        The same rules as :meth:`subscribe`, as an import can know them: a new number is a new
        citizen; an opted-out one is skipped (an import is never the citizen's explicit consent);
        a row's language, when given, becomes the citizen's (the number's last one wins); one
        ledger row (channel import, the CSV row as raw) per row that added a subscription.
        ``zone_ids``: the catalogue's ids by key (synced before)."""
        out = Imported()
        writer = BulkWriter(conn, now)
        known, created, relanguaged = self._import_citizens(conn, writer, rows, out, now)
        have = subscriptions.held_by(  # citizens created just now have no subscription yet
            writer, [cid for n, (cid, opted_out, _) in known.items() if not opted_out and n not in created]
        )
        changed = created | relanguaged  # counted on the number's first row
        inserts: list[tuple[int, str, int | None]] = []
        ledger: list[tuple] = []
        places: dict[tuple[str, ...], tuple[tuple[int | None, ...], object]] = {}  # zones as written
        for r in rows:
            cid, opted_out, _ = known[r.msisdn]
            if opted_out:
                out.opted_out.append(r.line)
                continue
            out.applied.append(r)
            place = places.get(r.zones)
            if place is None:
                zones = self.catalogue.zones_of(r.zones)
                place = places[r.zones] = (
                    tuple(zone_ids[z.key] for z in zones) or (None,),
                    writer.json(tuple(z.name for z in zones)) if zones else None,
                )
            ids, names = place
            added: dict[str, None] = {}
            for topic in r.topics:
                for zone_id in ids:
                    key = (cid, topic, zone_id)
                    if key not in have:
                        have.add(key)
                        inserts.append(key)
                        added[topic] = None
            if added or r.msisdn in changed:
                changed.discard(r.msisdn)
                out.rows_changed += 1
            if added:
                topics = writer.json(tuple(added))
                ledger.append((cid, consent.SUBSCRIBE, consent.IMPORT, topics, names, r.raw))
        subscriptions.add_many(writer, inserts)
        consent.record_bulk(writer, ledger)
        out.subscriptions_added = len(inserts)
        out.consent_events = len(ledger)
        return out

    @staticmethod
    def _import_citizens(
        conn: Connection, writer: BulkWriter, rows: Sequence[ImportRow], out: Imported, now: datetime
    ) -> tuple[dict[str, tuple[int, bool, str]], set[str], set[str]]:
        """The rows' citizens, the new ones added and the languages given set:
        ({msisdn: (id, opted_out, language)}, the numbers added, the numbers whose language changed)."""
        numbers = list(dict.fromkeys(r.msisdn for r in rows))
        language_of: dict[str, str | None] = {}
        for r in rows:
            if r.language or r.msisdn not in language_of:
                language_of[r.msisdn] = r.language
        known = {n: (cid, opted_out, lang) for cid, n, opted_out, lang in citizens.by_number(writer, numbers)}
        new = [n for n in numbers if n not in known]
        if new:
            citizens.add_many(writer, [(n, language_of[n] or "es") for n in new])
            for cid, n, opted_out, lang in citizens.by_number(writer, new):
                known[n] = (cid, opted_out, lang)
                out.citizens_added += 1
        relanguaged = [
            n for n, lang in language_of.items() if lang and known[n][2] != lang and not known[n][1]
        ]
        citizens.set_languages(conn, [(known[n][0], language_of[n]) for n in relanguaged], now)
        out.languages_changed = len(relanguaged)
        return known, set(new), set(relanguaged)
