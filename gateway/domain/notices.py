"""The rules that turn a validated event into what to queue: audience, priority, texts, timing.

:class:`NoticePolicy` holds everything configured (templates, zones, quiet hours, validity, the
enrolment line, the emergency scope); :meth:`NoticePolicy.prepare` does the checks that need no
database (zones exist, appointment in the future, the text fits the maximum parts) so an event
refused with a 422 writes nothing, and renders the texts it can before the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from .catalog import EVENT_KINDS, EventKind
from .composer import REMINDER_TEMPLATE, ComposedText, Composer
from .events import Event, EventInvalid
from .languages import parse_language
from .status import Priority
from .templates import FALLBACK_LANGUAGE
from .timing import QuietHours, Timing, ValidityPolicy, plan_timing, to_naive_utc
from .zones import ZoneDirectory, load_zones

REMINDER_LEADS = (("24h", timedelta(hours=24)), ("2h", timedelta(hours=2)))


@dataclass(slots=True)
class Prepared:
    """One accepted-looking event, checked and (where possible) rendered, before the transaction."""

    client_id: str
    event: Event
    payload: dict
    kind: EventKind
    priority: Priority
    language: str  # the language the text was rendered in (case events: the event's, else Spanish)
    text: ComposedText | None = None  # case events
    texts: dict[str, ComposedText] = field(default_factory=dict)  # broadcasts: one per language
    zone_keys: list[str] | None = None  # broadcasts; None = every zone
    zone_labels: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return self.client_id, self.event.id


@dataclass
class NoticePolicy:
    composer: Composer
    zones: ZoneDirectory = field(default_factory=load_zones)
    quiet: QuietHours = field(default_factory=QuietHours.off)
    validity: ValidityPolicy = field(default_factory=ValidityPolicy)
    max_segments: int = 3
    enrolment: bool = False
    emergency_scope: Literal["subscribers", "citizens"] = "subscribers"

    @classmethod
    def simple(cls, composer: Composer, validity: timedelta | None = None) -> NoticePolicy:
        """No quiet hours, no enrolment line; ``validity`` for normal priority (tests, embedding)."""
        policy = ValidityPolicy()
        if validity is not None:
            policy = ValidityPolicy({**policy.by_priority, Priority.NORMAL: validity}, policy.by_type)
        return cls(composer, validity=policy)

    @property
    def languages(self) -> list[str]:
        return self.composer.renderer.languages() or [FALLBACK_LANGUAGE]

    # --- before the transaction ------------------------------------------------------------------

    def prepare(self, client_id: str, event: Event, payload: dict, now: datetime) -> Prepared:
        """Checks needing no database; raises EventInvalid (nothing is written then)."""
        kind = EVENT_KINDS[event.type]
        priority = kind.priority if event.priority is None else Priority.parse(event.priority)
        errors: list[tuple[str, str]] = []
        notice = event.notice
        if notice and notice.ends_at and to_naive_utc(notice.ends_at) <= now:
            errors.append(("notice.ends_at", "is in the past: the notice would be useless"))
        if event.type == "appointment.scheduled":
            at = event.case.appointment.at
            if to_naive_utc(at) <= now:
                errors.append(("case.appointment.at", "is in the past: an appointment must be in the future"))
        if event.citizen and event.citizen.language:
            try:
                parse_language(event.citizen.language, self.languages)
            except ValueError as exc:
                errors.append(("citizen.language", str(exc)))
        prepared = Prepared(client_id, event, payload, kind, priority, FALLBACK_LANGUAGE)
        if kind.audience == "subscribers":
            texts = event.area.zones if event.area else []
            if texts:
                found, zone_errors = self.zones.resolve(texts)
                errors += zone_errors
                prepared.zone_keys = [z.key for z in found]
                prepared.zone_labels = tuple(self.zones.label(t) for t in texts)
            elif not kind.zones_optional:
                errors.append(("area.zones", f"required for {event.type}"))
        if errors:
            raise EventInvalid(errors)
        if kind.audience == "subscribers":
            for language in self.languages:
                prepared.texts[language] = self._fit(
                    self.composer.compose(event, language, now, zone_labels=prepared.zone_labels), event
                )
        else:
            language = (event.citizen.language if event.citizen else None) or FALLBACK_LANGUAGE
            prepared.language = language
            prepared.text = self._fit(self.composer.compose(event, language, now), event)
        return prepared

    def _fit(self, text: ComposedText, event: Event) -> ComposedText:
        if text.segments <= self.max_segments:
            return text
        field_name = "notice.text"
        if not (event.notice and event.notice.text):
            case = event.case
            candidates = {
                "case.category": case.category if case else None,
                "case.status": case.status if case else None,
                "case.appointment.place": case.appointment.place if case and case.appointment else None,
                "citizen.name": event.citizen.name if event.citizen else None,
            }
            field_name = max(candidates, key=lambda k: len(candidates[k] or ""))
        raise EventInvalid(
            [
                (
                    field_name,
                    f"too long: the message would take {text.segments} parts ({text.encoding}, "
                    f"{len(text.body)} characters); at most {self.max_segments} are allowed",
                )
            ]
        )

    # --- inside the transaction ------------------------------------------------------------------

    def text_for(self, prepared: Prepared, language: str, now: datetime) -> ComposedText:
        """A case event's text in the citizen's language (re-rendered only when it differs)."""
        if language == prepared.language and prepared.text is not None:
            return prepared.text
        return self.composer.compose(prepared.event, language, now)

    def timing(
        self, now: datetime, priority: Priority, event_type: str | None, useless_after: datetime | None = None
    ) -> Timing:
        return plan_timing(now, priority, event_type, self.quiet, self.validity, useless_after)

    def useless_after(self, event: Event) -> datetime | None:
        """When a message about this event stops being worth sending."""
        if event.type in ("appointment.scheduled", "service.confirmed") and event.case.appointment:
            return to_naive_utc(event.case.appointment.at)
        if event.notice and event.notice.ends_at:
            return to_naive_utc(event.notice.ends_at)
        return None

    def broadcast_scope(self, prepared: Prepared) -> str:
        if prepared.zone_keys is None and prepared.kind.zones_optional:
            return self.emergency_scope
        return "subscribers"

    # --- appointment reminders -------------------------------------------------------------------

    def reminder_times(self, appointment_at: datetime, now: datetime) -> list[tuple[str, datetime]]:
        """(label, naive UTC) for the 24 h and 2 h reminders still ahead, moved out of quiet hours."""
        at = to_naive_utc(appointment_at)
        out = []
        for label, lead in REMINDER_LEADS:
            when = self.quiet.reminder_time(at - lead, at, now)
            if when is not None and now < when < at:
                out.append((label, when))
        return out

    def reminder_text(self, folio: str, at: datetime, place: str | None, language: str) -> ComposedText:
        context = {
            "event": None,
            "type": REMINDER_TEMPLATE,
            "folio": folio,
            "appointment_at": at,
            "place": place,
            "category": None,
            "name": None,
        }
        return self.composer.render(REMINDER_TEMPLATE, language, context)
