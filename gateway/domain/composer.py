"""Event + recipient -> the text to send, its encoding and its segment count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from textcodec.encoding import Transliteration, encode_text

from .events import Event
from .templates import TemplateMissing, TemplateRenderer

ENROLMENT_TEMPLATE = "enrolment"
REMINDER_TEMPLATE = "appointment.reminder"
ZONES_LABEL_MAX = 60  # characters of zone names in a broadcast before "y N zonas más"
_AND = {"es": "y", "en": "and"}
_MORE = {"es": "{n} zonas más", "en": "{n} more areas"}


@dataclass(frozen=True, slots=True)
class ComposedText:
    body: str
    encoding: str
    segments: int


def zones_label(labels: Sequence[str], language: str, limit: int = ZONES_LABEL_MAX) -> str | None:
    """["Polanco", "Anzures", "C.P. 11000"] -> "Polanco, Anzures y C.P. 11000"; long lists are cut
    to about ``limit`` characters: "Polanco, Anzures y 5 zonas más"."""
    labels = list(dict.fromkeys(labels))
    if not labels:
        return None
    lang = language if language in _AND else "es"

    def joined(items: list[str], rest: int) -> str:
        if rest:
            return f"{', '.join(items)} {_AND[lang]} {_MORE[lang].format(n=rest)}"
        if len(items) == 1:
            return items[0]
        return f"{', '.join(items[:-1])} {_AND[lang]} {items[-1]}"

    for shown in range(len(labels), 0, -1):
        text = joined(labels[:shown], len(labels) - shown)
        if len(text) <= limit or shown == 1:
            return text
    return None  # pragma: no cover - the loop always returns


class Composer:
    def __init__(self, renderer: TemplateRenderer, transliteration: str = "accents"):
        self.renderer = renderer
        self.transliteration = Transliteration(transliteration)
        self._enrolment: dict[str, str] = {}  # the enrolment line per language, rendered once

    def encode(self, text: str) -> ComposedText:
        encoded = encode_text(text, self.transliteration)
        return ComposedText(encoded.text, encoded.encoding, encoded.segments)

    @staticmethod
    def context(event: Event, received_at: datetime | None, zone_labels: Sequence[str] = ()) -> dict:
        """Every template variable an event provides (None where the event has nothing)."""
        case, notice = event.case, event.notice
        appointment = case.appointment if case else None
        when = event.occurred_at or received_at
        return {
            "event": event,
            "type": event.type,
            "folio": case.folio if case else None,
            "category": case.category if case else None,
            "status": case.status if case else None,
            "progress": case.progress if case else None,
            "resolution_date": case.resolution_date if case else None,
            "resolved_on": (case.resolution_date if case and case.resolution_date else when),
            "appointment_at": appointment.at if appointment else None,
            "place": appointment.place if appointment else None,
            "name": event.citizen.name if event.citizen else None,
            "received_at": when,
            "text": notice.text if notice else None,
            "starts_at": notice.starts_at if notice else None,
            "ends_at": notice.ends_at if notice else None,
            "zone_labels": tuple(zone_labels),
        }

    def render(self, template: str, language: str, context: dict) -> ComposedText:
        labels = context.get("zone_labels") or ()
        values = {**context, "zones": zones_label(labels, language)}
        return self.encode(self.renderer.render(template, language, **values))

    def compose(
        self,
        event: Event,
        language: str,
        received_at,
        *,
        template: str | None = None,
        zone_labels: Sequence[str] = (),
    ) -> ComposedText:
        context = self.context(event, received_at, zone_labels)
        return self.render(template or event.type, language, context)

    def with_enrolment(self, text: ComposedText, language: str) -> ComposedText:
        """``text`` plus the enrolment line when that does not add a part; else ``text``."""
        line = self._enrolment.get(language)
        if line is None:
            try:
                line = self.renderer.render(ENROLMENT_TEMPLATE, language)
            except TemplateMissing:  # no enrolment template at all: nothing to offer
                line = ""
            self._enrolment[language] = line
        if not line:
            return text
        longer = self.encode(f"{text.body} {line}")
        return longer if longer.segments <= text.segments else text
