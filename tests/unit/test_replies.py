"""Reply templates: AYUDA in one segment, every reply within the maximum parts, the
"which colonia?" question, and the start-up refusal of a help text that no longer fits."""

from __future__ import annotations

import shutil

import pytest

from config.settings import RepliesSettings
from gateway.domain.composer import Composer
from gateway.domain.preview import TemplateTooLong
from gateway.domain.templates import DEFAULT_DIRECTORY, TemplateRenderer
from gateway.domain.zones import load_zones
from gateway.services.reply_texts import REPLY_TEMPLATES, ReplyTexts
from tests.conftest import make_settings

ZONES = load_zones()


def texts(directory=DEFAULT_DIRECTORY, **replies) -> ReplyTexts:
    from zoneinfo import ZoneInfo

    composer = Composer(TemplateRenderer(ZoneInfo("America/Mexico_City"), "30311", directory))
    return ReplyTexts(composer, RepliesSettings(**replies))


def test_every_reply_template_fits_and_help_takes_one_segment():
    worst = texts().check()
    assert {name for name, _ in worst} == set(REPLY_TEMPLATES)
    for language in ("es", "en"):
        assert worst[("reply.help", language)].segments == 1
        assert worst[("reply.help", language)].encoding == "gsm7"
    longest_phone = texts(city_phone="(55) 5658-1111 *0311").check()
    assert longest_phone[("reply.help", "es")].segments == 1


def test_a_help_text_over_one_segment_stops_the_start(tmp_path):
    directory = tmp_path / "templates"
    shutil.copytree(DEFAULT_DIRECTORY, directory)
    (directory / "es" / "reply.help.txt").write_text("Ayuda: " + "palabras " * 20 + "{{ city_phone }}")
    with pytest.raises(TemplateTooLong, match=r"es/reply\.help\.txt: can take 2 parts.*at most 1"):
        texts(directory).check()


def test_a_missing_spanish_reply_template_stops_the_start(tmp_path):
    directory = tmp_path / "templates"
    shutil.copytree(DEFAULT_DIRECTORY, directory)
    (directory / "es" / "reply.status.txt").unlink()
    with pytest.raises(TemplateTooLong, match=r"es/reply\.status\.txt: missing"):
        texts(directory).check()


@pytest.mark.parametrize(
    ("written", "keyword", "topic", "language", "question", "example"),
    [
        ("POLANCO", "ALTA", "AGUA", "es", "Polanco: ¿I, II, III, IV o V Sección?", "ALTA AGUA POLANCO 2"),
        ("ESCANDON", "START", None, "en", "Escandón: I or II Sección?", "START ESCANDON 2"),
        ("POLANCO", "ALTA", "*", "es", "Polanco: ¿I, II, III, IV o V Sección?", "ALTA TODO POLANCO 2"),
    ],
)
def test_the_question_for_a_name_that_means_several(written, keyword, topic, language, question, example):
    choices = ZONES.match(written)
    assert texts().question(written, choices, keyword, topic, language) == (question, example)


def test_the_question_lists_different_colonias_and_offers_a_postal_code():
    question, example = texts().question("LOMAS", ZONES.match("LOMAS"), "ALTA", "VIAL", "es")
    assert question.startswith("¿Cuál colonia: Lomas de Chapultepec, Lomas Hermosa, Lomas de Sotelo")
    assert question.endswith(" u otra?") and len(question) <= 110
    assert example == "ALTA VIAL 11000"


def test_replies_settings_are_validated():
    with pytest.raises(Exception, match="city_phone"):
        make_settings({"replies": {"city_phone": "llame a Locatel"}})
    assert make_settings({"replies": {"max_per_day": 3}}).replies.max_per_day == 3
