"""Keyword parsing (spec section 4): case, accents, punctuation and spaces do not matter."""

import pytest

from gateway.domain.keywords import Intent, fold, looks_like_auto_reply, parse


@pytest.mark.parametrize(
    ("text", "intent", "language"),
    [
        ("ALTA", Intent.SUBSCRIBE, "es"),
        ("alta", Intent.SUBSCRIBE, "es"),
        ("  Suscribir  ", Intent.SUBSCRIBE, "es"),
        ("START", Intent.SUBSCRIBE, "en"),
        ("baja", Intent.UNSUBSCRIBE, "es"),
        ("Alto.", Intent.UNSUBSCRIBE, "es"),
        ("STOP", Intent.UNSUBSCRIBE, "en"),
        ("cancelar", Intent.UNSUBSCRIBE, "es"),
        ("Salir!", Intent.UNSUBSCRIBE, "es"),
        ("AYUDA", Intent.HELP, "es"),
        ("¿Ayuda?", Intent.HELP, "es"),
        ("info", Intent.HELP, "es"),
        ("help", Intent.HELP, "en"),
        ("SI", Intent.CONFIRM, "es"),
        ("Sí", Intent.CONFIRM, "es"),
        ("sí.", Intent.CONFIRM, "es"),
        ("¡SÍ!", Intent.CONFIRM, "es"),
        ("Confirmo", Intent.CONFIRM, "es"),
        ("no", Intent.DECLINE, "es"),
        ("No puedo ir", Intent.DECLINE, "es"),
        ("hola buenas tardes", Intent.UNKNOWN, "es"),
        ("", Intent.UNKNOWN, "es"),
        ("...", Intent.UNKNOWN, "es"),
    ],
)
def test_first_word_decides(text, intent, language):
    request = parse(text)
    assert (request.intent, request.language) == (intent, language)


@pytest.mark.parametrize(
    ("text", "topic", "zones"),
    [
        ("ALTA AGUA POLANCO", "AGUA", ("POLANCO",)),
        ("alta agua polanco", "AGUA", ("POLANCO",)),
        ("Alta  Agua   Anáhuac", "AGUA", ("ANAHUAC",)),
        ("ALTA AGUA 11560", "AGUA", ("11560",)),
        ("ALTA VIAL Polanco, Anzures 11590", "VIAL", ("POLANCO", "ANZURES", "11590")),
        ("ALTA AGUA Lomas de Chapultepec III Sección", "AGUA", ("LOMAS DE CHAPULTEPEC III SECCION",)),
        ("ALTA EMERGENCIA", "EMERGENCIA", ()),
        ("ALTA", None, ()),
        ("ALTA POLANCO", None, ("POLANCO",)),
        ("ALTA water 11560", "AGUA", ("11560",)),
        ("ALTA AGUA colonia Polanco y Granada", "AGUA", ("POLANCO GRANADA",)),
        ("ALTA AGUA Polanco; Granada", "AGUA", ("POLANCO", "GRANADA")),
    ],
)
def test_subscribe_topic_and_zones(text, topic, zones):
    request = parse(text)
    assert request.intent is Intent.SUBSCRIBE
    assert (request.topic, request.zones) == (topic, zones)


def test_unsubscribe_from_one_topic_or_everything():
    assert parse("BAJA AGUA").topic == "AGUA"
    assert parse("baja").topic is None
    assert parse("STOP ALL").topic == "*"


@pytest.mark.parametrize(
    ("text", "folio"),
    [
        ("ESTADO MH-2026-004512", "MH-2026-004512"),
        ("estado mh-2026-004512", "MH-2026-004512"),
        ("Folio: MH-2026-004512.", "MH-2026-004512"),
        ("ESTADO", None),
        ("estado  MH 2026 004512", "MH2026004512"),
    ],
)
def test_status_carries_the_folio(text, folio):
    request = parse(text)
    assert request.intent is Intent.STATUS
    assert request.folio == folio


def test_fold_strips_accents_and_spaces():
    assert fold("  Añil   Güero  ÉL ") == "ANIL GUERO EL"


@pytest.mark.parametrize(
    "text",
    [
        "Respuesta automática: no estoy disponible",
        "Auto-reply: I am out of the office",
        "Este es un mensaje automático, no responda",
        "Estoy manejando, te llamo luego",
        "AUTOREPLY",
    ],
)
def test_auto_replies_are_recognised(text):
    assert looks_like_auto_reply(text)


@pytest.mark.parametrize("text", ["ALTA AGUA POLANCO", "hola", "¿qué es esto?", "no"])
def test_citizens_are_not_auto_replies(text):
    assert not looks_like_auto_reply(text)
