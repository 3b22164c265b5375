"""Every event type: what it needs (422 naming the field), its text in Spanish and English, and the
start-up check that no template can render longer than the maximum parts."""

from __future__ import annotations

import shutil
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.catalog import EVENT_KINDS, REQUIRED_FIELDS
from gateway.domain.composer import Composer, zones_label
from gateway.domain.events import EventInvalid, parse_event
from gateway.domain.notices import NoticePolicy
from gateway.domain.preview import TEMPLATE_NAMES, TemplateTooLong, check_templates, format_preview
from gateway.domain.templates import DEFAULT_DIRECTORY, TemplateRenderer, clip
from gateway.domain.timing import QuietHours

CITY = ZoneInfo("America/Mexico_City")
NOW = datetime(2026, 11, 29, 16, 0)  # naive UTC: 10:00 in the city


@pytest.fixture
def policy() -> NoticePolicy:
    return NoticePolicy(Composer(TemplateRenderer(CITY, "30311")), enrolment=True)


def _prepare(policy: NoticePolicy, data: dict):
    return policy.prepare("cesac", parse_event(data, REQUIRED_FIELDS), data, NOW)


def _errors(policy: NoticePolicy, data: dict) -> dict[str, str]:
    with pytest.raises(EventInvalid) as info:
        _prepare(policy, data)
    return dict(info.value.errors)


CASE = {"folio": "MH-2026-004512", "category": "Fuga de agua"}
CITIZEN = {"msisdn": "55 1234 5678", "language": "es"}
APPOINTMENT = {"at": "2026-12-03T10:30:00-06:00", "place": "Módulo Tacuba"}
WINDOW = {"starts_at": "2026-12-01T08:00:00-06:00", "ends_at": "2026-12-01T18:00:00-06:00"}


def test_every_type_of_the_spec_is_supported():
    assert set(EVENT_KINDS) == {
        *("case.received", "case.status_changed", "case.resolved", "case.closed"),
        *("appointment.scheduled", "appointment.cancelled", "service.confirmed"),
        *("water.outage", "traffic.alert", "emergency.alert", "notice"),
    }
    priorities = {name: kind.priority.name.lower() for name, kind in EVENT_KINDS.items()}
    assert priorities["appointment.scheduled"] == priorities["water.outage"] == "high"
    assert priorities["emergency.alert"] == "emergency" and priorities["notice"] == "low"
    assert {k.topic for k in EVENT_KINDS.values() if k.topic} == {"AGUA", "VIAL", "EMERGENCIA", "AVISOS"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "case.status_changed", "case": {"folio": "A-1"}, "citizen": CITIZEN}, "case.status"),
        (
            {"type": "appointment.scheduled", "case": {"folio": "A-1"}, "citizen": CITIZEN},
            "case.appointment.at",
        ),
        ({"type": "appointment.cancelled", "case": {"folio": "A-1"}}, "citizen.msisdn"),
        ({"type": "service.confirmed", "citizen": CITIZEN}, "case.folio"),
        ({"type": "water.outage", "notice": WINDOW}, "area.zones"),
        ({"type": "water.outage", "area": {"zones": []}, "notice": WINDOW}, "area.zones"),
        (
            {
                "type": "water.outage",
                "area": {"zones": ["Polanco"]},
                "notice": {"starts_at": WINDOW["starts_at"]},
            },
            "notice.ends_at",
        ),
        ({"type": "traffic.alert", "area": {"zones": ["Polanco"]}}, "notice.text"),
        ({"type": "notice", "notice": {"text": "x"}}, "area.zones"),
        ({"type": "emergency.alert", "area": {"zones": ["Polanco"]}}, "notice.text"),
    ],
)
def test_each_type_is_validated_for_what_it_needs(policy, data, field):
    errors = _errors(policy, {"id": "e-1", **data})
    assert field in errors


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (
            {"type": "water.outage", "area": {"zones": ["Narvarte"]}, "notice": WINDOW},
            "area.zones[0]",
            "unknown",
        ),
        (
            {
                "type": "water.outage",
                "area": {"zones": ["Polanco"]},
                "notice": {"starts_at": WINDOW["ends_at"], "ends_at": WINDOW["starts_at"]},
            },
            "notice.ends_at",
            "after",
        ),
        (
            {
                "type": "traffic.alert",
                "area": {"zones": ["Polanco"]},
                "notice": {"text": "x", "ends_at": "2026-11-29T09:00:00-06:00"},
            },
            "notice.ends_at",
            "past",
        ),
        (
            {
                "type": "appointment.scheduled",
                "case": {"folio": "A-1", "appointment": {"at": "2026-11-28T10:00:00-06:00"}},
                "citizen": CITIZEN,
            },
            "case.appointment.at",
            "past",
        ),
        (
            {
                "type": "appointment.scheduled",
                "case": {"folio": "A-1", "appointment": {"at": "2026-12-03T10:30:00"}},
                "citizen": CITIZEN,
            },
            "case.appointment.at",
            "offset",
        ),
        (
            {"type": "notice", "area": {"zones": ["Polanco"]}, "notice": {"text": "Aviso importante. " * 40}},
            "notice.text",
            "at most 3",
        ),
        (
            {
                "type": "notice",
                "priority": "emergency",
                "area": {"zones": ["Polanco"]},
                "notice": {"text": "x"},
            },
            "priority",
            "reserved",
        ),
    ],
)
def test_invalid_values_are_named(policy, data, field, reason):
    with pytest.raises(EventInvalid) as info:
        data = {"id": "e-1", **data}
        _prepare(policy, data)
    errors = dict(info.value.errors)
    assert field in errors and reason in errors[field], errors


def test_emergency_alert_needs_no_zones(policy):
    prepared = _prepare(policy, {"id": "e", "type": "emergency.alert", "notice": {"text": "Sismo."}})
    assert prepared.zone_keys is None
    assert policy.broadcast_scope(prepared) == "subscribers"
    assert prepared.texts["es"].body == "EMERGENCIA: Sismo."
    assert prepared.texts["en"].body == "EMERGENCY: Sismo."


EXPECTED = {
    ("case.status_changed", "es"): "Su reporte MH-2026-004512 cambio de estado: En proceso, avance 60%. "
    "Para mas informacion envie ESTADO MH-2026-004512 al 30311.",
    ("case.status_changed", "en"): "Your report MH-2026-004512 changed status: En proceso, 60% done. "
    "For details text ESTADO MH-2026-004512 to 30311.",
    (
        "case.resolved",
        "es",
    ): "Su reporte MH-2026-004512 de Fuga de agua quedo resuelto el miércoles 2 de diciembre. "
    "Gracias por avisarnos.",
    (
        "case.closed",
        "en",
    ): "We have closed your report MH-2026-004512 (Fuga de agua). Thank you for taking part.",
    (
        "appointment.scheduled",
        "es",
    ): "Tiene cita por su reporte MH-2026-004512 el jueves 3 de diciembre, 10:30 en "
    "Modulo Tacuba. Responda SI para confirmar o NO si no puede asistir.",
    (
        "appointment.cancelled",
        "es",
    ): "Se cancelo su cita por el reporte MH-2026-004512 del jueves 3 de diciembre, "
    "10:30. Para mas informacion envie ESTADO MH-2026-004512 al 30311.",
    (
        "service.confirmed",
        "es",
    ): "Su servicio de Fuga de agua (reporte MH-2026-004512) esta confirmado para el "
    "jueves 3 de diciembre, 10:30 en Modulo Tacuba.",
}


@pytest.mark.parametrize(("type_", "language"), list(EXPECTED))
def test_case_texts(policy, type_, language):
    case = {
        **CASE,
        "status": "En proceso",
        "progress": 60,
        "resolution_date": "2026-12-02",
        "appointment": APPOINTMENT,
    }
    data = {"id": "e", "type": type_, "case": case, "citizen": {**CITIZEN, "language": language}}
    prepared = _prepare(policy, data)
    assert prepared.text.body == EXPECTED[(type_, language)]
    assert prepared.text.encoding == "gsm7" and prepared.text.segments == 1


def test_broadcast_texts_are_rendered_once_per_language(policy):
    data = {"id": "e", "type": "water.outage", "area": {"zones": ["Polanco", "11590"]}, "notice": WINDOW}
    prepared = _prepare(policy, data)
    assert prepared.texts["es"].body == (
        "Corte de agua en Polanco y C.P. 11590 el martes 1 de diciembre de 08:00 a 18:00. "
        "Almacene agua con anticipacion."
    )
    assert prepared.texts["en"].body == (
        "Water cut in Polanco and C.P. 11590 on Tuesday, December 1 from 08:00 to 18:00. "
        "Please store water in advance."
    )
    overnight = {
        **data,
        "notice": {"starts_at": "2026-12-01T22:00:00-06:00", "ends_at": "2026-12-02T06:00:00-06:00"},
    }
    assert "del martes 1 de diciembre, 22:00 al miércoles 2 de diciembre, 06:00" in (
        _prepare(policy, overnight).texts["es"].body
    )


def test_long_zone_lists_are_cut():
    labels = [f"Colonia {n}" for n in range(12)]
    assert zones_label(labels, "es") == "Colonia 0, Colonia 1, Colonia 2, Colonia 3 y 8 zonas más"
    assert zones_label(labels[:2], "en") == "Colonia 0 and Colonia 1"
    assert zones_label([], "es") is None


def test_clip_keeps_texts_gsm_and_bounded():
    assert clip("corto", 10) == "corto"
    clipped = clip("una categoría con un nombre muy largo de verdad", 20)
    assert len(clipped) <= 20 and clipped.endswith("...")


# --- enrolment ----------------------------------------------------------------------------------


def test_enrolment_line_is_added_only_when_the_part_count_stays(policy):
    composer = policy.composer
    short = composer.encode("Recibimos su reporte con folio A1. Envie ESTADO A1 al 30311.")
    offered = composer.with_enrolment(short, "es")
    assert offered.body.endswith("Responda ALTA AGUA para avisos de cortes de agua en su colonia.")
    assert offered.segments == 1
    long = composer.encode("x" * 120)
    assert composer.with_enrolment(long, "es") == long
    assert composer.with_enrolment(short, "en").body.endswith(
        "Reply ALTA AGUA for water cut alerts in your area."
    )


# --- the start-up check -------------------------------------------------------------------------


def test_the_shipped_templates_pass_the_start_up_check():
    composer = Composer(TemplateRenderer(CITY, "30311"))
    reports = check_templates(composer, 3)
    assert {(r.name, r.language) for r in reports} == {
        (n, lang) for n in TEMPLATE_NAMES for lang in ("es", "en")
    }
    assert all(r.example.segments == 1 for r in reports), [r.name for r in reports if r.example.segments > 1]
    assert all(r.worst.segments <= 3 for r in reports)
    text = format_preview(reports, 3)
    assert "case.received [es]  gsm7, 1 part" in text and "water.outage [en]" in text


def test_a_template_that_can_exceed_the_maximum_is_refused(tmp_path):
    shutil.copytree(DEFAULT_DIRECTORY, tmp_path / "templates")
    (tmp_path / "templates" / "es" / "case.closed.txt").write_text(
        "Concluimos {{ folio }} {{ category }} {{ category }} {{ category }} {{ category }}", encoding="utf-8"
    )
    composer = Composer(TemplateRenderer(CITY, "30311", tmp_path / "templates"))
    with pytest.raises(TemplateTooLong, match=r"es/case.closed.txt: can take \d parts"):
        check_templates(composer, 3)
    (tmp_path / "templates" / "es" / "case.closed.txt").write_text("{{ no_such_variable }}", encoding="utf-8")
    with pytest.raises(TemplateTooLong, match="does not render"):  # (files are read at start-up)
        check_templates(Composer(TemplateRenderer(CITY, "30311", tmp_path / "templates")), 3)
    (tmp_path / "templates" / "es" / "case.closed.txt").unlink()
    with pytest.raises(TemplateTooLong, match="missing"):
        check_templates(Composer(TemplateRenderer(CITY, "30311", tmp_path / "templates")), 3)


def test_quiet_hours_policy_places_reminders():
    from datetime import time

    policy = NoticePolicy(
        Composer(TemplateRenderer(CITY, "30311")), quiet=QuietHours(time(22), time(7), CITY)
    )
    at = datetime.fromisoformat("2026-12-03T08:00:00-06:00")
    times = dict(policy.reminder_times(at, NOW))
    assert times["24h"] == datetime(2026, 12, 2, 14, 0)  # 08:00 the day before, city time
    assert times["2h"] == datetime(2026, 12, 3, 13, 0)  # 06:00 is quiet: moved to 07:00 city time
    soon = datetime.fromisoformat("2026-11-29T13:00:00-06:00")
    assert [label for label, _ in policy.reminder_times(soon, NOW)] == ["2h"]  # 24 h before is past
