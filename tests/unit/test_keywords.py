"""Keyword parsing (docs/keywords.md): case, accents, punctuation and spaces do not matter."""

import pytest

from gateway.domain.keywords import MAX_ZONES, Intent, fold, looks_like_auto_reply, parse


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


# --- the reply's language, folios after punctuation, zones as citizens write them ---------


@pytest.mark.parametrize(
    ("text", "explicit"),
    [("ALTA", True), ("START", True), ("STOP", True), ("ayuda", True), ("INFO", False), ("no", False),
     ("hola", False), ("", False)],
)  # fmt: skip
def test_which_keywords_say_the_language_of_the_reply(text, explicit):
    assert parse(text).explicit_language is explicit


def test_a_folio_right_after_the_keyword_and_punctuation():
    assert parse("ESTADO:MH-2026-1").folio == "MH-2026-1"
    assert parse("¿Estado? mh-2026-1").folio == "MH-2026-1"


def test_topic_synonyms():
    assert parse("ALTA AGUAS 11560").topic == "AGUA"
    assert parse("alta tránsito").topic == "VIAL"
    assert parse("BAJA TODO").topic == "*"


from gateway.domain.keywords import resolve_zones, topic_word, zone_or_problem  # noqa: E402
from gateway.domain.zones import load_zones  # noqa: E402

ZONES = load_zones()


def _resolved(text):
    r = resolve_zones(ZONES, parse(text).zones)
    return [z.name for z in r.zones], [(w, len(c)) for w, c in r.ambiguous], list(r.unknown), list(r.labels)


@pytest.mark.parametrize(
    ("text", "found", "ambiguous", "unknown"),
    [
        ("ALTA AGUA POLANCO", [], [("POLANCO", 5)], []),
        ("ALTA AGUA polanco 2", ["Polanco II Sección"], [], []),
        ("ALTA AGUA Polanco quinta", ["Polanco V Sección"], [], []),
        ("ALTA AGUA Anáhuac 1a. Secc.", ["Anáhuac I Sección"], [], []),
        ("ALTA AGUA Madero", ["Francisco I Madero"], [], []),  # no colonia's whole name, one contains it
        ("ALTA AGUA polanco 2 anzures", ["Polanco II Sección", "Anzures"], [], []),  # run together
        ("ALTA AGUA 11590", ["Anzures"], [], []),
        ("ALTA AGUA 99999", [], [], ["99999"]),
        ("ALTA LUZ POLANCO 5", ["Polanco V Sección"], [], ["LUZ"]),  # an unknown topic is an unknown word
        ("ALTA AGUA narnia", [], [], ["NARNIA"]),
    ],
)
def test_zones_as_citizens_write_them(text, found, ambiguous, unknown):
    names, asked, missing, _ = _resolved(text)
    assert (names, asked, missing) == (found, ambiguous, unknown)


def test_postal_codes_read_as_postal_codes_in_replies():
    assert _resolved("ALTA AGUA 11000, Anzures")[3] == ["C.P. 11000", "Anzures"]
    assert len(_resolved("ALTA AGUA 11000")[0]) == 8  # a postal code means every colonia with it


def test_zone_problems_for_the_api_and_the_import():
    assert [z.name for z in zone_or_problem(ZONES, "Polanco V Sección")] == ["Polanco V Sección"]
    assert "means several colonias: Polanco I Sección (11510)" in zone_or_problem(ZONES, "Polanco")
    assert zone_or_problem(ZONES, "Narnia") == "unknown colonia or postal code 'Narnia' in the zone catalogue"
    assert zone_or_problem(ZONES, "  ") == "empty zone"
    assert (topic_word("água"), topic_word("Water"), topic_word("todos"), topic_word("luz")) == (
        "AGUA", "AGUA", "*", None
    )  # fmt: skip


def test_an_sms_names_at_most_max_zones():
    text = "ALTA AGUA " + ", ".join(f"zona{i}" for i in range(3000))  # a 255-part MO
    request = parse(text)
    assert request.zones == tuple(f"ZONA{i}" for i in range(MAX_ZONES))
