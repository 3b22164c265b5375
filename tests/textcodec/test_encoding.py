import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textcodec import gsm0338
from textcodec.encoding import EncodedText, Transliteration, decode_payload, encode_text, transliterate

OFF, ACCENTS, FULL = Transliteration.OFF, Transliteration.ACCENTS, Transliteration.FULL
SETTINGS = settings(max_examples=200, deadline=None)
MIXED = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(gsm0338.CHARSET)),
        st.sampled_from("€[]{}~|^\\\x0c"),
        st.sampled_from("áíóúÁÍÓÚéñü¿¡"),
        st.sampled_from("😀👍🇲🇽“”—…\u00a0"),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=400,
)


def test_cancion():
    assert encode_text("canción", OFF) == EncodedText(
        "canción", "ucs2", 8, "canción".encode("utf-16-be"), 7, 1
    )
    assert encode_text("canción", ACCENTS) == EncodedText(
        "canción".replace("ó", "o"), "gsm7", 0, b"cancion", 7, 1
    )
    assert encode_text("canción") == encode_text("canción", ACCENTS)  # ACCENTS is the default


@pytest.mark.parametrize("mode", list(Transliteration))
def test_spanish_gsm_text_is_untouched(mode):
    for text in ("¿Año?", "¡Pingüino! Éxito, niño, señor Muñoz, ¿qué tal?"):
        encoded = encode_text(text, mode)
        assert (encoded.text, encoded.encoding, encoded.data_coding) == (text, "gsm7", 0)


def test_accents_maps_exactly_the_eight_vowels():
    assert transliterate("áíóúÁÍÓÚ éÉñÑüÜ¿¡", ACCENTS) == "aiouAIOU éÉñÑüÜ¿¡"
    encoded = encode_text("Su trámite número 12 está en revisión, José", ACCENTS)
    assert encoded.text == "Su tramite numero 12 esta en revision, José"
    assert encoded.encoding == "gsm7"


@pytest.mark.parametrize("mode", [ACCENTS, FULL])
def test_transliteration_never_degrades_a_ucs2_message(mode):
    for text in ("canción 😀", "Ω niño á ж", "mamá 中文"):
        encoded = encode_text(text, mode)
        assert (encoded.text, encoded.encoding, encoded.data_coding) == (text, "ucs2", 8)
        assert encoded.payload == text.encode("utf-16-be")


def test_accents_leaves_typographic_punctuation_alone():
    encoded = encode_text("“canción”", ACCENTS)
    assert (encoded.text, encoded.encoding) == ("“canción”", "ucs2")


def test_full_transliteration():
    text = "“Hola” — ‘qué’ tal… Àngel, façade\u00a0œuvre ｆｕｌｌ `x` ½"
    encoded = encode_text(text, FULL)
    assert encoded.encoding == "gsm7"
    assert encoded.text == "\"Hola\" - 'qué' tal... Angel, facade oeuvre full 'x' 1/2"
    assert transliterate("Å\u212b", FULL) == "ÅÅ"  # the Angstrom sign becomes GSM's Å, not A
    assert transliterate("a\u200bb\u00adc", FULL) == "abc"


def test_full_transliteration_is_dropped_when_it_costs_segments():
    assert encode_text("…" * 70, FULL).encoding == "ucs2"  # 1 UCS-2 segment vs 210 septets
    assert encode_text("…" * 53, FULL).text == "." * 159
    cheaper = encode_text("…" * 68 + "a" * 67, FULL)  # UCS-2: 135 units, 3 parts; GSM: 271 septets
    assert (cheaper.encoding, cheaper.segments) == ("gsm7", 2)


def test_decomposed_accents_are_normalized():
    assert encode_text("cancio\u0301n pin\u0303a", ACCENTS).text == "cancion piña"
    assert encode_text("x\u0301", FULL).text == "x"


def test_transliteration_accepts_plain_strings():
    assert encode_text("canción", "off").encoding == "ucs2"
    assert encode_text("canción", "full").text == "cancion"
    with pytest.raises(ValueError):
        encode_text("canción", "bogus")


def test_euro_counts_two_septets():
    encoded = encode_text("€")
    assert (encoded.payload, encoded.units, encoded.segments) == (b"\x1be", 2, 1)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 158 + "€", 1),
        ("a" * 159 + "€", 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 152 + "€" + "b" * 10, 2),
        ("a" * 152 + "€" + "b" * 152, 3),  # 306 septets, but the escape pair moves whole: 152 + 153 + 1
        ("€" * 80, 1),
        ("€" * 81, 2),
    ],
)
def test_gsm_segments(text, segments):
    encoded = encode_text(text, OFF)
    assert encoded.encoding == "gsm7"
    assert encoded.segments == segments


@pytest.mark.parametrize(
    ("concat", "single", "per_part"),
    [("udh8", 160, 153), ("udh16", 160, 152), ("sar", 160, 153), ("payload", 160, 153)],
)
def test_gsm_capacity_per_concat_method(concat, single, per_part):
    assert encode_text("a" * single, concat=concat).segments == 1
    assert encode_text("a" * (single + 1), concat=concat).segments == 2
    assert encode_text("a" * 2 * per_part, concat=concat).segments == 2
    assert encode_text("a" * (2 * per_part + 1), concat=concat).segments == 3


@pytest.mark.parametrize(("concat", "per_part"), [("udh8", 67), ("udh16", 66), ("sar", 67), ("payload", 67)])
def test_ucs2_capacity(concat, per_part):
    assert encode_text("á" * 70, OFF, concat).segments == 1
    assert encode_text("á" * 71, OFF, concat).segments == 2
    assert encode_text("á" * 2 * per_part, OFF, concat).segments == 2
    assert encode_text("á" * (2 * per_part + 1), OFF, concat).segments == 3
    encoded = encode_text("á" * 70, OFF, concat)
    assert (encoded.encoding, encoded.data_coding, encoded.units) == ("ucs2", 8, 70)


def test_surrogate_pairs_count_two_units_and_are_not_split():
    assert encode_text("😀" * 35).units == 70
    assert encode_text("😀" * 35).segments == 1
    assert encode_text("😀" * 35 + "a").segments == 2
    # 134 units would be 2 parts of 67, but the emoji straddling unit 67 moves whole: 66 + 67 + 1
    assert encode_text("x" * 66 + "😀" + "y" * 66).segments == 3


def test_unpaired_surrogate_is_rejected():
    with pytest.raises(ValueError):
        encode_text("a\ud83d")


def test_decode_payload():
    assert decode_payload(b"\x00\x02\x1be\x60", 0) == "@$€¿"
    assert decode_payload(b"Hola\xff", 1) == "Hola\ufffd"
    assert decode_payload("niño".encode("latin-1"), 3) == "niño"
    assert decode_payload("canción 😀".encode("utf-16-be"), 8) == "canción 😀"
    assert decode_payload("canción".encode("utf-16-be") + b"\x00", 8) == "canción"  # odd trailing byte
    assert decode_payload(b"\xd8\x3d", 8) == "\ufffd"  # lone surrogate: no exception
    assert decode_payload(b"\x01\xab", 2) == "01ab"
    assert decode_payload(b"\x01\xab", 4) == "01ab"
    assert decode_payload("ñ".encode("latin-1"), 0xF0) == "ñ"
    assert decode_payload(b"", 8) == ""


@SETTINGS
@given(MIXED)
def test_off_keeps_the_text_and_round_trips(text):
    encoded = encode_text(text, OFF)
    assert encoded.text == text
    assert (encoded.encoding == "gsm7") == gsm0338.can_encode(text)
    assert decode_payload(encoded.payload, encoded.data_coding) == text
    width = 1 if encoded.encoding == "gsm7" else 2
    assert encoded.units * width == len(encoded.payload)
    assert encoded.segments >= 1


@SETTINGS
@given(MIXED, st.sampled_from([ACCENTS, FULL]))
def test_transliteration_gives_gsm_or_the_original(text, mode):
    encoded = encode_text(text, mode)
    assert decode_payload(encoded.payload, encoded.data_coding) == encoded.text
    if encoded.encoding == "ucs2":
        assert encoded.text == text
    else:
        assert gsm0338.can_encode(encoded.text)
    if mode is ACCENTS and encoded.encoding == "gsm7" and unicodedata.is_normalized("NFC", text):
        assert encoded.text == text.translate(str.maketrans("áíóúÁÍÓÚ", "aiouAIOU"))
    # transliteration never costs segments
    assert encoded.segments <= encode_text(text, OFF).segments
