import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textcodec import gsm0338
from textcodec.gsm0338 import BASIC, EXTENSION, can_encode, decode, encode, pack, septet_count, unpack

REFERENCE_ROWS = [
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ",
    " !\"#¤%&'()*+,-./",
    "0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNO",
    "PQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmno",
    "pqrstuvwxyzäöñüà",
]
ALL_CHARS = sorted(gsm0338.CHARSET)
SETTINGS = settings(max_examples=200, deadline=None)


def test_basic_table_matches_reference_rows():
    assert len(BASIC) == 128
    assert [BASIC[i : i + 16] for i in range(0, 128, 16)] == REFERENCE_ROWS


@pytest.mark.parametrize(
    ("char", "code"),
    [
        ("@", 0x00), ("£", 0x01), ("$", 0x02), ("¥", 0x03), ("\n", 0x0A), ("\r", 0x0D), ("_", 0x11),
        ("Δ", 0x10), ("É", 0x1F), (" ", 0x20), ("¤", 0x24), ("¡", 0x40), ("A", 0x41), ("Ñ", 0x5D),
        ("Ü", 0x5E), ("§", 0x5F), ("¿", 0x60), ("a", 0x61), ("ñ", 0x7D), ("ü", 0x7E), ("à", 0x7F),
        ("é", 0x05), ("Ç", 0x09),
    ],
)  # fmt: skip
def test_basic_positions(char, code):
    assert encode(char) == bytes([code])
    assert decode(bytes([code])) == char
    assert septet_count(char) == 1


@pytest.mark.parametrize(
    ("char", "code"),
    [("\x0c", 0x0A), ("^", 0x14), ("{", 0x28), ("}", 0x29), ("\\", 0x2F), ("[", 0x3C), ("~", 0x3D),
     ("]", 0x3E), ("|", 0x40), ("€", 0x65)],
)  # fmt: skip
def test_extension_positions(char, code):
    assert EXTENSION[char] == code
    assert encode(char) == bytes([0x1B, code])
    assert decode(bytes([0x1B, code])) == char
    assert septet_count(char) == 2


def test_whole_alphabet_round_trips():
    text = "".join(ALL_CHARS)
    assert len(ALL_CHARS) == 127 + 10  # 128 basic minus ESC, plus the extension table
    assert decode(encode(text)) == text
    assert septet_count(text) == 127 + 2 * 10


@pytest.mark.parametrize("char", ["á", "í", "ó", "ú", "`", "\x1b", "\t", "ç", "À", "😀", "“"])
def test_not_gsm(char):
    assert not can_encode("abc" + char)
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}.*position 3"):
        encode("abc" + char + "á")
    with pytest.raises(ValueError):
        septet_count(char)


def test_can_encode():
    assert can_encode("")
    assert can_encode("¿Año? ¡Si, señor! {x} [y] €5 ~ | ^ \\ é ü")
    assert not can_encode("canción")


def test_error_names_the_first_offending_character():
    with pytest.raises(ValueError, match="'á'"):
        encode("mamá y papá ó")


def test_decode_escape_edge_cases():
    assert decode(b"\x1b\x41") == "A"  # unknown escape code shows the basic character
    assert decode(b"\x1b\x00") == "@"
    assert decode(b"ab\x1b") == "ab "  # trailing lone ESC
    assert decode(b"\x1b") == " "
    assert decode(b"\x1b\x1ba") == " a"  # ESC ESC: reserved, shown as a space
    assert decode(b"\x1b\x1b\x1b\x65") == " €"
    assert decode(b"\x1b\x0a") == "\x0c"
    assert decode(b"a\x80\xff") == "a\ufffd\ufffd"  # not septets
    assert decode(b"") == ""


def test_hellohello_packs_to_known_vector():
    assert pack(encode("hellohello")) == bytes.fromhex("E8329BFD4697D9EC37")
    assert unpack(bytes.fromhex("E8329BFD4697D9EC37"), 10) == encode("hellohello")


def test_pack_sizes_and_fill_bits():
    assert pack(b"") == b""
    assert len(pack(b"a" * 8)) == 7
    assert len(pack(b"a" * 160)) == 140
    assert len(pack(b"a" * 153, fill_bits=1)) == 134  # after a 6-octet UDH: 1 + 153*7 bits
    assert pack(b"\x41", fill_bits=1) == b"\x82"
    with pytest.raises(ValueError):
        pack(b"\x80")
    with pytest.raises(ValueError):
        pack(b"a", fill_bits=7)
    with pytest.raises(ValueError):
        unpack(b"\x00", 2)


@SETTINGS
@given(st.binary().map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_unpack_round_trip(septets, fill):
    packed = pack(septets, fill)
    assert len(packed) == (7 * len(septets) + fill + 7) // 8
    assert unpack(packed, len(septets), fill) == septets


@SETTINGS
@given(st.text(alphabet=st.sampled_from(ALL_CHARS)))
def test_encode_decode_round_trip(text):
    data = encode(text)
    assert can_encode(text)
    assert max(data, default=0) <= 0x7F
    assert septet_count(text) == len(data) == len(text) + sum(text.count(c) for c in EXTENSION)
    assert decode(data) == text


@SETTINGS
@given(st.binary(max_size=200))
def test_decode_never_raises(data):
    assert isinstance(decode(data), str)


smpplib_gsm = pytest.importorskip("smpplib.gsm")


@SETTINGS
@given(st.text(alphabet=st.sampled_from([c for c in ALL_CHARS if c not in "§\x0c"])))
def test_matches_smpplib_gsm_encode(text):
    assert encode(text) == smpplib_gsm.gsm_encode(text)


def test_smpplib_table_bugs_we_avoid():
    assert encode("§") == b"\x5f"
    with pytest.raises(UnicodeError):
        smpplib_gsm.gsm_encode("§")
    assert smpplib_gsm.gsm_encode("`") == b"\x5f"  # smpplib sends a backtick that handsets show as '§'
    assert not can_encode("`")
    assert encode("\x0c") == b"\x1b\x0a"
    with pytest.raises(UnicodeError):
        smpplib_gsm.gsm_encode("\x0c")  # no form feed in smpplib's extension table
