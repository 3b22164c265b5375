"""Template examples and the start-up check that no template can render longer than allowed.

Each template is rendered with worst-case values: the longest folio (64 characters), every optional
field present and as long as the event schema allows (templates bound category, status and place
with ``clip``), the longest date and a window over two days, the longest zone list a broadcast can
name (it is cut at about 60 characters) and a notice text of ``NOTICE_TEXT_BOUND`` characters. The
free notice text is the one value no template can bound: an event whose text would make the
message longer than the maximum is refused with a 422 on ``notice.text`` when it is posted.
All worst-case values are GSM 03.38 letters (Spanish stays GSM-7 once á í ó ú are transliterated).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from . import dates
from .catalog import EVENT_KINDS
from .composer import REMINDER_TEMPLATE, ComposedText, Composer
from .events import Event
from .templates import TemplateMissing

NOTICE_TEXT_BOUND = 200
TEMPLATE_NAMES = (*EVENT_KINDS, REMINDER_TEMPLATE)
_BROADCAST = {"water.outage", "traffic.alert", "emergency.alert", "notice"}


class TemplateTooLong(ValueError):
    """A template can render longer than the configured maximum number of parts (or fails to render)."""


EXAMPLE_EVENT = {
    "id": "ejemplo-1",
    "occurred_at": "2026-11-29T10:00:00-06:00",
    "case": {
        "folio": "MH-2026-004512",
        "category": "Fuga de agua",
        "status": "En proceso",
        "progress": 60,
        "resolution_date": "2026-12-02",
        "appointment": {"at": "2026-12-03T10:30:00-06:00", "place": "Módulo Tacuba"},
    },
    "citizen": {"msisdn": "55 1234 5678", "name": "Ana", "language": "es"},
    "notice": {
        "text": "Habrá pipas en el parque Salesiano.",
        "starts_at": "2026-12-01T08:00:00-06:00",
        "ends_at": "2026-12-01T18:00:00-06:00",
    },
}
_EXAMPLE_TEXTS = {
    "traffic.alert": "Cierre de Av. Horacio entre Arquímedes y Moliere por obras; use rutas alternas.",
    "emergency.alert": "Sismo. Aléjese de ventanas, siga las indicaciones de Protección Civil.",
    "notice": "Jornada de vacunación en el parque Lincoln, de 9:00 a 14:00.",
    "water.outage": None,
}
_EXAMPLE_ZONES = ("Polanco", "Anzures")


def _longest_moment(composer: Composer, language: str) -> datetime:
    tz = composer.renderer.tz
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(366)]
    day = max(days, key=lambda d: len(dates.long_date(d, tz, language)))
    return datetime(day.year, day.month, day.day, 22, 30, tzinfo=tz)


def example_context(composer: Composer, name: str, language: str) -> dict:
    data = {**EXAMPLE_EVENT, "type": name if name in EVENT_KINDS else "appointment.scheduled"}
    notice = dict(data["notice"])
    if name in _EXAMPLE_TEXTS:
        notice["text"] = _EXAMPLE_TEXTS[name]
    if name in ("traffic.alert", "emergency.alert"):
        notice.pop("starts_at"), notice.pop("ends_at")
    data["notice"] = notice
    event = Event.model_validate(data)
    labels = _EXAMPLE_ZONES if name in _BROADCAST else ()
    return composer.context(event, datetime(2026, 11, 29, 16, 0), labels)


def worst_case_context(composer: Composer, name: str, language: str, zone_labels=()) -> dict:
    start = _longest_moment(composer, language)
    end = start + timedelta(days=1, minutes=1)
    long = {
        "folio": "MH-" + "9" * 61,
        "category": "C" * 120,
        "status": "S" * 120,
        "progress": 100,
        "resolution_date": start.date(),
        "resolved_on": start.date(),
        "appointment_at": start,
        "place": "P" * 200,
        "name": "N" * 120,
        "received_at": start,
        "text": "T" * NOTICE_TEXT_BOUND,
        "starts_at": start,
        "ends_at": end,
        "zone_labels": tuple(zone_labels) or tuple(f"Colonia de nombre largo {n}" for n in range(86)),
    }
    event = Event.model_validate({"id": "peor-caso", "type": name if name in EVENT_KINDS else "notice"})
    return {"event": event, "type": name, **long}


@dataclass(frozen=True, slots=True)
class TemplateReport:
    name: str
    language: str
    example: ComposedText
    worst: ComposedText


def check_templates(composer: Composer, max_segments: int, zone_labels=()) -> list[TemplateReport]:
    """Render every template in every language (example and worst case); raise TemplateTooLong
    naming every template that fails to render or can exceed ``max_segments`` parts."""
    reports, problems = [], []
    for language in composer.renderer.languages():
        for name in TEMPLATE_NAMES:
            if not composer.renderer.has(name, language):
                if language == "es":
                    problems.append(f"{language}/{name}.txt: missing (Spanish is the fallback language)")
                continue
            try:
                example = composer.render(name, language, example_context(composer, name, language))
                worst = composer.render(
                    name, language, worst_case_context(composer, name, language, zone_labels)
                )
            except TemplateMissing as exc:
                problems.append(f"{language}/{name}.txt: {exc}")
                continue
            except Exception as exc:  # a syntax error, an unknown variable, a sandbox violation
                problems.append(f"{language}/{name}.txt: does not render: {type(exc).__name__}: {exc}")
                continue
            if worst.segments > max_segments:
                problems.append(
                    f"{language}/{name}.txt: can take {worst.segments} parts ({len(worst.body)} characters, "
                    f"{worst.encoding}) with the longest values; at most {max_segments} are allowed"
                )
            reports.append(TemplateReport(name, language, example, worst))
    if problems:
        raise TemplateTooLong("; ".join(problems))
    return reports


def format_preview(reports: list[TemplateReport], max_segments: int) -> str:
    lines = [f"templates (at most {max_segments} parts each; worst case: the longest values accepted)", ""]
    for r in reports:
        plural = "s" if r.example.segments != 1 else ""
        lines.append(
            f"{r.name} [{r.language}]  {r.example.encoding}, {r.example.segments} part{plural}, "
            f"{len(r.example.body)} chars  (worst case {r.worst.segments} parts, {len(r.worst.body)} chars)"
        )
        lines.append(f"  {r.example.body}")
        lines.append("")
    return "\n".join(lines)
