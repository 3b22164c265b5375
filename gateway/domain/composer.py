"""Event + recipient -> the text to send, its encoding and its segment count."""

from __future__ import annotations

from dataclasses import dataclass

from smpp_client.text_encoding import Transliteration, encode_text

from .events import Event
from .templates import TemplateRenderer


@dataclass(frozen=True, slots=True)
class ComposedText:
    body: str
    encoding: str
    segments: int


class Composer:
    def __init__(self, renderer: TemplateRenderer, transliteration: str = "accents"):
        self.renderer = renderer
        self.transliteration = Transliteration(transliteration)

    def encode(self, text: str) -> ComposedText:
        encoded = encode_text(text, self.transliteration)
        return ComposedText(encoded.text, encoded.encoding, encoded.segments)

    def compose(self, event: Event, language: str, received_at) -> ComposedText:
        case = event.case
        context = {
            "event": event,
            "folio": case.folio if case else None,
            "category": case.category if case else None,
            "status": case.status if case else None,
            "name": event.citizen.name if event.citizen else None,
            "received_at": event.occurred_at or received_at,
        }
        return self.encode(self.renderer.render(event.type, language, **context))
