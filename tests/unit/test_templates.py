"""Message texts: template files, languages, city-time dates, encoding and the Jinja2 sandbox."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from jinja2.exceptions import SecurityError

from gateway.domain import dates
from gateway.domain.catalog import REQUIRED_FIELDS
from gateway.domain.composer import Composer
from gateway.domain.events import parse_event
from gateway.domain.templates import DEFAULT_DIRECTORY, TemplateMissing, TemplateRenderer

CITY = ZoneInfo("America/Mexico_City")
FOLIO = "MH-2026-004512"
# 03:00 UTC on the 30th is 21:00 on the 29th in Mexico City (UTC-6, no DST since 2022).
LATE_EVENING_UTC = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)

ES_TEXT = "Su reporte MH-2026-004512 fue recibido el 29/11/2026. Consulte: ESTADO MH-2026-004512 al 30311."
EN_TEXT = (
    "Report MH-2026-004512 received on Sunday, November 29. Status: text ESTADO MH-2026-004512 to 30311."
)


@pytest.fixture
def renderer() -> TemplateRenderer:
    return TemplateRenderer(CITY, "30311")


def _render(renderer: TemplateRenderer, language: str, **overrides) -> str:
    context = {"folio": FOLIO, "category": "Fuga de agua", "received_at": LATE_EVENING_UTC, "name": "Ana"}
    context.update(overrides)
    return renderer.render("case.received", language, **context)


def _event(language: str = "es", occurred_at: str | None = "2026-11-30T03:00:00Z", **case):
    data = {
        "id": "cesac-1",
        "type": "case.received",
        "case": {"folio": FOLIO, "category": "Fuga de agua", **case},
        "citizen": {"msisdn": "55 1234 5678", "name": "Ana", "language": language},
    }
    if occurred_at is not None:
        data["occurred_at"] = occurred_at
    return parse_event(data, REQUIRED_FIELDS)


# --- template files ------------------------------------------------------------------------------


def test_template_files_exist_for_both_languages():
    assert (DEFAULT_DIRECTORY / "es" / "case.received.txt").is_file()
    assert (DEFAULT_DIRECTORY / "en" / "case.received.txt").is_file()


def test_spanish_case_received_text(renderer):
    assert _render(renderer, "es") == ES_TEXT


def test_english_case_received_text(renderer):
    assert _render(renderer, "en") == EN_TEXT


def test_the_category_is_not_needed_in_the_text(renderer):
    assert _render(renderer, "es", category=None) == ES_TEXT
    assert _render(renderer, "en", category=None) == EN_TEXT


@pytest.mark.parametrize("language", ["fr", "pt", "xx"])
def test_unknown_language_falls_back_to_spanish(renderer, language):
    assert _render(renderer, language) == ES_TEXT


def test_short_code_comes_from_the_renderer():
    text = _render(TemplateRenderer(CITY, "55555"), "es")
    assert text.endswith("al 55555.")
    assert "30311" not in text


def test_whitespace_from_wrapped_lines_is_collapsed(renderer):
    text = _render(renderer, "es")
    assert "\n" not in text
    assert "  " not in text
    assert text == text.strip()


def test_unknown_template_raises_template_missing(renderer):
    with pytest.raises(TemplateMissing, match=r"no template 'no.such.type' for language 'en'"):
        renderer.render("no.such.type", "en")


def test_missing_variable_is_an_error_not_an_empty_string(renderer):
    from jinja2.exceptions import UndefinedError

    with pytest.raises(UndefinedError):
        renderer.render("case.received", "es", category=None, received_at=LATE_EVENING_UTC)


# --- time zone -----------------------------------------------------------------------------------


def test_date_is_the_city_date_not_the_utc_date(renderer):
    assert "el 29/11/2026" in _render(renderer, "es", received_at=LATE_EVENING_UTC)
    assert "el 30/11/2026" in _render(renderer, "es", received_at=datetime(2026, 11, 30, 6, 0, tzinfo=UTC))


def test_naive_datetimes_are_taken_as_utc(renderer):
    assert "el 29/11/2026" in _render(renderer, "es", received_at=datetime(2026, 11, 30, 3, 0))


def test_composer_formats_occurred_at_in_city_time(renderer):
    composed = Composer(renderer).compose(_event(), "es", datetime(2026, 12, 5, 12, 0))
    assert "el 29/11/2026" in composed.body


def test_composer_falls_back_to_received_at_without_occurred_at(renderer):
    # received_at as the intake passes it: naive UTC
    composed = Composer(renderer).compose(_event(occurred_at=None), "es", datetime(2026, 11, 30, 3, 0))
    assert "el 29/11/2026" in composed.body


# --- dates ---------------------------------------------------------------------------------------


def test_long_datetime_in_spanish():
    moment = datetime.fromisoformat("2024-12-03T10:30:00-06:00")
    assert dates.long_datetime(moment, CITY, "es") == "martes 3 de diciembre, 10:30"


def test_long_datetime_in_english():
    moment = datetime.fromisoformat("2024-12-03T10:30:00-06:00")
    assert dates.long_datetime(moment, CITY, "en") == "Tuesday, December 3, 10:30"


def test_long_datetime_converts_utc_to_city_time():
    assert (
        dates.long_datetime(datetime(2024, 12, 3, 16, 30, tzinfo=UTC), CITY) == "martes 3 de diciembre, 10:30"
    )
    assert dates.long_datetime(datetime(2024, 12, 3, 16, 30), CITY) == "martes 3 de diciembre, 10:30"


def test_long_date_in_both_languages():
    assert dates.long_date(date(2026, 12, 2), CITY, "es") == "miércoles 2 de diciembre"
    assert dates.long_date(date(2026, 12, 2), CITY, "en") == "Wednesday, December 2"


def test_long_date_of_a_datetime_uses_the_city_day():
    assert dates.long_date(LATE_EVENING_UTC, CITY, "es") == "domingo 29 de noviembre"


def test_short_date_day_month_order_per_language():
    assert dates.short_date(date(2026, 1, 5), CITY, "es") == "05/01/2026"
    assert dates.short_date(date(2026, 1, 5), CITY, "en") == "01/05/2026"


# --- composer ------------------------------------------------------------------------------------


def test_composer_encodes_the_case_text_gsm7_in_one_segment(renderer):
    composed = Composer(renderer).compose(_event(), "es", None)
    assert composed.body == ES_TEXT
    assert composed.encoding == "gsm7"
    assert composed.segments == 1


def test_composer_english_is_gsm7_in_one_segment(renderer):
    composed = Composer(renderer).compose(_event(language="en"), "en", None)
    assert composed.body == EN_TEXT
    assert composed.encoding == "gsm7"
    assert composed.segments == 1


def test_without_transliteration_one_accent_makes_the_text_ucs2(renderer):
    text = "Su reporte está en proceso. " * 3
    assert Composer(renderer).encode(text).encoding == "gsm7"
    composed = Composer(renderer, transliteration="off").encode(text)
    assert composed.body == text.strip() or composed.body == text
    assert composed.encoding == "ucs2"
    assert len(text) == 84
    assert composed.segments == 2  # 84 UTF-16 units > 70: two concatenated parts of 67


def test_gsm_letters_with_accents_are_kept(renderer):
    """é, ñ and ü exist in GSM 03.38 and must not be transliterated."""
    composed = Composer(renderer).encode("Señor, su café está listo")
    assert composed.body == "Señor, su café esta listo"
    assert composed.encoding == "gsm7"


def test_characters_outside_gsm_fall_back_to_ucs2(renderer):
    composed = Composer(renderer).encode("Aviso 🚰 corte de agua")
    assert composed.encoding == "ucs2"
    assert composed.body == "Aviso 🚰 corte de agua"
    assert composed.segments == 1


def test_long_text_is_counted_in_concatenated_segments(renderer):
    composed = Composer(renderer).encode("a" * 161)
    assert (composed.encoding, composed.segments) == ("gsm7", 2)
    assert Composer(renderer).encode("a" * 160).segments == 1


# --- sandbox -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ folio.__class__.__base__.__subclasses__() }}",
        "{{ event.__init__.__globals__ }}",
        "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_sandbox_refuses_unsafe_template_code(tmp_path, source):
    (tmp_path / "es").mkdir()
    (tmp_path / "es" / "evil.txt").write_text(source)
    renderer = TemplateRenderer(CITY, "30311", directory=tmp_path)
    with pytest.raises(SecurityError):
        renderer.render("evil", "es", folio=FOLIO, event=_event())


def test_operator_template_in_custom_directory_can_use_the_date_filters(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "x.txt").write_text("Cita {{ at | long_datetime }}\n  en {{ place }}")
    (tmp_path / "es").mkdir()
    (tmp_path / "es" / "x.txt").write_text("Cita el {{ at | long_datetime }} en {{ place }}")
    renderer = TemplateRenderer(CITY, "30311", directory=tmp_path)
    at = datetime(2024, 12, 3, 16, 30, tzinfo=UTC)
    assert (
        renderer.render("x", "es", at=at, place="Tacuba") == "Cita el martes 3 de diciembre, 10:30 en Tacuba"
    )
    assert renderer.render("x", "en", at=at, place="Tacuba") == "Cita Tuesday, December 3, 10:30 en Tacuba"
