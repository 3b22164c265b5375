"""The replies to citizens' SMS: their templates, checked at start-up, and the texts built for them.

Every reply template (``reply.*.txt``) must render in every language within ``[templates]
max_segments`` with the longest values accepted, and the help text (AYUDA) in one part: the
keywords and the city's phone in one segment. A reply that asks which colonia ("Polanco: ¿I, II,
III, IV o V Sección?") or offers the nearest names of a misspelt one is written here too.
"""

from __future__ import annotations

from collections.abc import Sequence

from config.settings import RepliesSettings
from gateway.domain.composer import ComposedText, Composer
from gateway.domain.keywords import fold
from gateway.domain.preview import TemplateTooLong, worst_case_context
from gateway.domain.templates import clip
from gateway.domain.zones import Zone

REPLY_TEMPLATES = (
    "reply.help",
    "reply.subscribed",
    "reply.ambiguous_zone",
    "reply.unknown_zone",
    "reply.unsubscribed",
    "reply.opted_out",
    "reply.status",
    "reply.not_found",
    "reply.status_usage",
    "reply.confirmed",
    "reply.declined",
)
ONE_PART = ("reply.help",)
QUESTION_MAX = 110  # characters of the choices in an "which colonia?" reply
SUGGESTION_MAX = 80  # characters of the names offered for a misspelt colonia

_ROMAN = ("", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")
_OR = {"es": "o", "en": "or"}
_ALL_WORD = {"es": "TODO", "en": "ALL"}


def all_word(language: str) -> str:
    """How "every topic" is written in a command: TODO, ALL."""
    return _ALL_WORD.get(language, "TODO")


class ReplyTexts:
    """Renders the replies with the city's phone and privacy notice."""

    def __init__(self, composer: Composer, settings: RepliesSettings | None = None, max_segments: int = 3):
        self.composer = composer
        self.settings = settings or RepliesSettings()
        self.max_segments = max_segments

    def render(self, name: str, language: str, context: dict) -> ComposedText:
        values = {
            "city_phone": self.settings.city_phone,
            "privacy_url": self.settings.privacy_url,
            "zone_labels": (),
            **context,
        }
        return self.composer.render(name, language, values)

    # --- start-up check -----------------------------------------------------------------------

    def check(self) -> dict[tuple[str, str], ComposedText]:
        """Render every reply template in every language with the longest values accepted;
        raises TemplateTooLong when one can exceed the maximum parts, when the help text can take
        more than one part, or when a Spanish one is missing. Returns the worst cases."""
        out, problems = {}, []
        renderer = self.composer.renderer
        for language in renderer.languages():
            for name in REPLY_TEMPLATES:
                if not renderer.has(name, language):
                    if language == "es":
                        problems.append(f"{language}/{name}.txt: missing (Spanish is the fallback language)")
                    continue
                try:
                    worst = max(
                        (self.render(name, language, c) for c in self._worst_contexts(name, language)),
                        key=lambda t: (t.segments, len(t.body)),
                    )
                except Exception as exc:
                    problems.append(f"{language}/{name}.txt: does not render: {type(exc).__name__}: {exc}")
                    continue
                limit = 1 if name in ONE_PART else self.max_segments
                if worst.segments > limit:
                    problems.append(
                        f"{language}/{name}.txt: can take {worst.segments} parts ({len(worst.body)} "
                        f"characters, {worst.encoding}); at most {limit} allowed"
                    )
                out[(name, language)] = worst
        if problems:
            raise TemplateTooLong("; ".join(problems))
        return out

    def _worst_contexts(self, name: str, language: str) -> list[dict]:
        """The longest values accepted; for a template with optional parts, also without them."""
        worst = self._worst_context(language)
        if name == "reply.unknown_zone":
            suggested = {"suggestion": "S" * SUGGESTION_MAX, "example": "SUSCRIBIR EMERGENCIA " + "X" * 50}
            return [{**worst, **suggested}, worst]
        return [worst]

    def _worst_context(self, language: str) -> dict:
        base = worst_case_context(self.composer, "appointment.scheduled", language)
        return {
            "folio": base["folio"],
            "category": base["category"],
            "status": base["status"],
            "progress": 100,
            "resolved_on": None,
            "closed": False,
            "appointment_at": base["appointment_at"],
            "place": base["place"],
            "topics": "EMERGENCIA, AVISOS y AGUA",
            "all_topics": False,
            "topic": "EMERGENCIA",
            "zone_labels": base["zone_labels"],
            "question": "Q" * QUESTION_MAX,
            "example": "SUSCRIBIR EMERGENCIA " + "X" * 30 + " 10",
            "zone": "Z" * 60,
            "keyword": "SUSCRIBIR",
            "suggestion": None,
        }

    # --- texts built for a reply ------------------------------------------------------------------

    def question(
        self,
        written: str,
        choices: Sequence[Zone],
        keyword: str,
        topic: str | None,
        language: str,
    ) -> tuple[str, str]:
        """("Polanco: ¿I, II, III, IV o V Sección?", "ALTA AGUA POLANCO 2") for a name that means
        several colonias: the choices, and a command that picks one."""
        lang = language if language in _OR else "es"
        words = [keyword]
        if topic:
            words.append(_ALL_WORD[lang] if topic == "*" else topic)
        bases = list(dict.fromkeys(z.display_base for z in choices))
        sections = sorted({z.section for z in choices if z.section is not None})
        if len(bases) == 1 and len(sections) == len(choices) and all(s < len(_ROMAN) for s in sections):
            labels = [_ROMAN[s] for s in sections]
            joined = f"{', '.join(labels[:-1])} {_OR[lang]} {labels[-1]}"
            question = f"{bases[0]}: ¿{joined} Sección?" if lang == "es" else f"{bases[0]}: {joined} Sección?"
            example = " ".join([*words, fold(bases[0]), str(sections[min(1, len(sections) - 1)])])
            return clip(question, QUESTION_MAX), example
        shown: list[str] = []
        for name in bases:
            if len(", ".join([*shown, name])) > QUESTION_MAX - 25:
                break
            shown.append(name)
        more = len(bases) > len(shown)
        if lang == "es":
            tail = f"{', '.join(shown)} u otra" if more else f"{', '.join(shown[:-1])} o {shown[-1]}"
            question = f"¿Cuál colonia: {tail}?" if len(shown) > 1 or more else f"¿{shown[0]}?"
        else:
            tail = f"{', '.join(shown)} or another" if more else f"{', '.join(shown[:-1])} or {shown[-1]}"
            question = f"Which colonia: {tail}?" if len(shown) > 1 or more else f"{shown[0]}?"
        example = " ".join([*words, choices[0].cp])
        return clip(question, QUESTION_MAX), example

    @staticmethod
    def choices(names: Sequence[str], language: str) -> str:
        """["Tacuba", "Tacubaya"] -> "Tacuba o Tacubaya" (clipped for a reply)."""
        word = _OR.get(language, "o")
        joined = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"
        return clip(joined, SUGGESTION_MAX)
