"""Reply templates (issue 6): AYUDA in one segment, every reply within the maximum parts, the
"which colonia?" question, and the start-up refusal of a help text that no longer fits."""

from __future__ import annotations

import random
import shutil

import pytest

from config.settings import RepliesSettings
from gateway.domain.composer import Composer
from gateway.domain.notices import NoticePolicy
from gateway.domain.phone import InvalidNumber, normalize_msisdn
from gateway.domain.preview import TemplateTooLong
from gateway.domain.templates import DEFAULT_DIRECTORY, TemplateRenderer
from gateway.domain.zones import load_zones
from gateway.services.citizen_sms import REPLY_TEMPLATES, CitizenInbox
from gateway.services.subscriber_import import normalize_fast
from tests.conftest import make_settings

ZONES = load_zones()


def inbox(directory=DEFAULT_DIRECTORY, **replies) -> CitizenInbox:
    from zoneinfo import ZoneInfo

    composer = Composer(TemplateRenderer(ZoneInfo("America/Mexico_City"), "30311", directory))
    return CitizenInbox(None, NoticePolicy(composer, zones=ZONES), RepliesSettings(**replies))


def test_every_reply_template_fits_and_help_takes_one_segment():
    worst = inbox().check_templates()
    assert {name for name, _ in worst} == set(REPLY_TEMPLATES)
    for language in ("es", "en"):
        assert worst[("reply.help", language)].segments == 1
        assert worst[("reply.help", language)].encoding == "gsm7"
    longest_phone = inbox(city_phone="(55) 5658-1111 *0311").check_templates()
    assert longest_phone[("reply.help", "es")].segments == 1


def test_a_help_text_over_one_segment_stops_the_start(tmp_path):
    directory = tmp_path / "templates"
    shutil.copytree(DEFAULT_DIRECTORY, directory)
    (directory / "es" / "reply.help.txt").write_text("Ayuda: " + "palabras " * 20 + "{{ city_phone }}")
    with pytest.raises(TemplateTooLong, match=r"es/reply\.help\.txt: can take 2 parts.*at most 1"):
        inbox(directory).check_templates()


def test_a_missing_spanish_reply_template_stops_the_start(tmp_path):
    directory = tmp_path / "templates"
    shutil.copytree(DEFAULT_DIRECTORY, directory)
    (directory / "es" / "reply.status.txt").unlink()
    with pytest.raises(TemplateTooLong, match=r"es/reply\.status\.txt: missing"):
        inbox(directory).check_templates()


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
    assert inbox().question(written, choices, keyword, topic, language) == (question, example)


def test_the_question_lists_different_colonias_and_offers_a_postal_code():
    question, example = inbox().question("LOMAS", ZONES.match("LOMAS"), "ALTA", "VIAL", "es")
    assert question.startswith("¿Cuál colonia: Lomas de Chapultepec, Lomas Hermosa, Lomas de Sotelo")
    assert question.endswith(" u otra?") and len(question) <= 110
    assert example == "ALTA VIAL 11000"


def test_replies_settings_are_validated():
    with pytest.raises(Exception, match="city_phone"):
        make_settings({"replies": {"city_phone": "llame a Locatel"}})
    assert make_settings({"replies": {"max_per_day": 3}}).replies.max_per_day == 3


def test_the_import_fast_path_is_exactly_as_strict_as_normalize_msisdn():
    rng = random.Random(6)
    for prefix in range(1000):
        for _ in range(3):
            national = f"{prefix:03d}{rng.randrange(10**7):07d}"
            for raw in (national, "+52" + national):
                try:
                    expected = normalize_msisdn(raw)
                except InvalidNumber as exc:
                    expected = str(exc)
                try:
                    got = normalize_fast(raw)
                except InvalidNumber as exc:
                    got = str(exc)
                assert got == expected, raw
    forms = (
        "{n}",
        "+52{n}",
        "52{n}",
        "521{n}",
        "+52 1 {a} {b} {c}",
        "044 {a} {b} {c}",
        "01 {n}",
        "00 52 {n}",
        "({a}) {b}-{c}",
        "{a}.{b}.{c}",
        "+52-{a}-{b}-{c}",
        "+1 {n}",
        "{n}9",
        "+52 {n}x",
        "0{n}",
        " {n} ",
    )
    for prefix in range(0, 1000, 7):
        national = f"{prefix:03d}{rng.randrange(10**7):07d}"
        a, b, c = national[:2], national[2:6], national[6:]
        for form in forms:
            raw = form.format(n=national, a=a, b=b, c=c)
            try:
                expected = normalize_msisdn(raw)
            except InvalidNumber as exc:
                expected = str(exc)
            try:
                got = normalize_fast(raw)
            except InvalidNumber as exc:
                got = str(exc)
            assert got == expected, raw
    for raw in ("55 1234 5678", "+52 1 55 1234 5678", "044 55 1234 5678", "800 123 4567", "12345", ""):
        try:
            expected = normalize_msisdn(raw)
        except InvalidNumber as exc:
            expected = str(exc)
        try:
            got = normalize_fast(raw)
        except InvalidNumber as exc:
            got = str(exc)
        assert got == expected, raw
