import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpp_client.concat import (
    ConcatInfo,
    Part,
    ReferenceCounter,
    concat_info_from_tlvs,
    on_air_octets,
    parse_udh,
    split,
)
from smpp_client.reassembly import Reassembler
from textcodec import gsm0338
from textcodec.encoding import Transliteration, decode_payload, encode_text
from textcodec.segments import ConcatMethod, split_payload

OFF = Transliteration.OFF
SETTINGS = settings(max_examples=200, deadline=None)
MIXED = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(gsm0338.CHARSET)),
        st.sampled_from("€[]{}~|^\\\x0c"),
        st.sampled_from("áíóúÁÍÓÚéñü¿¡"),
        st.sampled_from("😀👍🇲🇽“”—…"),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=500,
)
KEY = ("5512345678", "3110")


def _split_off(text: str, method: ConcatMethod, reference: int = 0x2A):
    encoded = encode_text(text, OFF, method)
    return encoded, split(encoded, method, reference)


def reassemble(parts: list[Part], data_coding: int) -> str:
    """What the SMSC simulator does with the parts of one message."""
    reassembler = Reassembler(timeout_seconds=60)
    result = None
    for part in reversed(parts):  # out of order on purpose
        if part.esm_class & 0x40:
            info, user_data = parse_udh(part.short_message)
        else:
            info, user_data = (
                concat_info_from_tlvs(part.tlvs),
                part.short_message or part.tlvs.get(0x0424, b""),
            )
        if info is None:
            assert len(parts) == 1
            return decode_payload(user_data, data_coding)
        result = reassembler.add(KEY, info, user_data, now=0.0)
    assert result is not None
    assert len(reassembler) == 0
    return decode_payload(b"".join(result), data_coding)


# --- splitting -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(ConcatMethod))
def test_single_segment_has_no_udh_nor_tlvs(method):
    for text, payload in (
        ("hola", b"hola"),
        ("a" * 160, b"a" * 160),
        ("á" * 70, "á".encode("utf-16-be") * 70),
    ):
        _, parts = _split_off(text, method)
        assert parts == [Part(payload, 0, {}, 1, 1)]


def test_udh8_shape():
    _, parts = _split_off("a" * 161, ConcatMethod.UDH8, reference=0x2A)
    assert parts == [
        Part(bytes.fromhex("0500032A0201") + b"a" * 153, 0x40, {}, 1, 2),
        Part(bytes.fromhex("0500032A0202") + b"a" * 8, 0x40, {}, 2, 2),
    ]


def test_udh16_shape():
    _, parts = _split_off("a" * 161, ConcatMethod.UDH16, reference=0x1234)
    assert parts == [
        Part(bytes.fromhex("06080412340201") + b"a" * 152, 0x40, {}, 1, 2),
        Part(bytes.fromhex("06080412340202") + b"a" * 9, 0x40, {}, 2, 2),
    ]


def test_sar_shape():
    _, parts = _split_off("a" * 161, ConcatMethod.SAR, reference=0x1234)
    assert parts == [
        Part(b"a" * 153, 0, {0x020C: b"\x12\x34", 0x020E: b"\x02", 0x020F: b"\x01"}, 1, 2),
        Part(b"a" * 8, 0, {0x020C: b"\x12\x34", 0x020E: b"\x02", 0x020F: b"\x02"}, 2, 2),
    ]


def test_payload_shape():
    encoded, parts = _split_off("a" * 161, ConcatMethod.PAYLOAD)
    assert encoded.segments == 2
    assert parts == [Part(b"", 0, {0x0424: b"a" * 161}, 1, 1)]


def test_ucs2_parts():
    _, parts = _split_off("á" * 71, ConcatMethod.UDH8, reference=1)
    assert [len(p.short_message) - 6 for p in parts] == [134, 8]
    assert parts[0].short_message[:6] == bytes.fromhex("050003010201")


def test_escape_at_part_boundary_moves_whole():
    encoded, parts = _split_off("a" * 152 + "€" + "b" * 10, ConcatMethod.UDH8)
    assert encoded.segments == len(parts) == 2
    assert parts[0].short_message[6:] == b"a" * 152
    assert parts[1].short_message[6:] == b"\x1be" + b"b" * 10


def test_escape_escape_pair_is_not_an_open_escape():
    # ESC ESC is a complete pair, so a chunk may end with it.
    payload = b"a" * 151 + b"\x1b\x1b" + b"b" * 20
    assert [len(c) for c in split_payload(payload, "gsm7")] == [153, 20]
    payload = b"a" * 150 + b"\x1b\x1b\x1be" + b"b" * 20
    assert [len(c) for c in split_payload(payload, "gsm7")] == [152, 22]


def test_surrogate_pair_at_boundary_is_not_split():
    encoded, parts = _split_off("x" * 66 + "😀" + "y" * 5, ConcatMethod.UDH8)
    assert encoded.segments == len(parts) == 2
    assert parts[0].short_message[6:] == "x".encode("utf-16-be") * 66
    assert parts[1].short_message[6:] == "😀yyyyy".encode("utf-16-be")


def test_at_most_255_parts():
    assert len(_split_off("a" * 153 * 255, ConcatMethod.UDH8)[1]) == 255
    for method in ConcatMethod:
        with pytest.raises(ValueError, match="more than 255"):
            _split_off("a" * (153 * 255 + 1), method)


def test_reference_range():
    encoded = encode_text("a" * 200)
    with pytest.raises(ValueError):
        split(encoded, ConcatMethod.UDH8, reference=256)
    with pytest.raises(ValueError):
        split(encoded, ConcatMethod.UDH16, reference=0x10000)
    assert split(encoded, ConcatMethod.SAR, reference=0xFFFF)[0].tlvs[0x020C] == b"\xff\xff"


def test_method_accepts_plain_strings():
    assert split(encode_text("a" * 200), "udh16", 5)[0].short_message[:7] == bytes.fromhex("06080400050201")
    with pytest.raises(ValueError):
        split(encode_text("a" * 200), "udh32")


# --- on-air size -----------------------------------------------------------------------------


def test_full_parts_are_exactly_140_octets():
    for text, method, data_coding in (
        ("a" * 160, ConcatMethod.UDH8, 0),
        ("a" * 153 * 2, ConcatMethod.UDH8, 0),
        ("a" * 152 * 2, ConcatMethod.UDH16, 0),
        ("a" * 153 * 2, ConcatMethod.SAR, 0),
        ("á" * 70, ConcatMethod.UDH8, 8),
        ("á" * 67 * 2, ConcatMethod.UDH8, 8),
        ("á" * 67 * 2, ConcatMethod.SAR, 8),
    ):
        _, parts = _split_off(text, method)
        assert [on_air_octets(p, data_coding) for p in parts] == [140] * len(parts), (text[:1], method)
    _, parts = _split_off("á" * 66 * 2, ConcatMethod.UDH16)
    assert [on_air_octets(p, 8) for p in parts] == [139, 139]  # 7-octet UDH + 66 UTF-16 units


def test_on_air_matches_packing_with_fill_bits():
    _, parts = _split_off("a" * 200, ConcatMethod.UDH8)
    udh, septets = parts[1].short_message[:6], parts[1].short_message[6:]
    assert on_air_octets(parts[1], 0) == len(udh) + len(gsm0338.pack(septets, fill_bits=1)) == 6 + 42
    _, parts = _split_off("a" * 200, ConcatMethod.UDH16)
    assert on_air_octets(parts[1], 0) == 7 + len(gsm0338.pack(parts[1].short_message[7:]))


def test_payload_part_counts_its_whole_payload():
    _, parts = _split_off("a" * 161, ConcatMethod.PAYLOAD)
    assert on_air_octets(parts[0], 0) == 141  # ceil(161 * 7 / 8): the SMSC has to segment it


def test_on_air_rejects_bad_udh():
    with pytest.raises(ValueError):
        on_air_octets(Part(b"\x05\x00", 0x40, {}, 1, 1), 0)


# --- reference counter -----------------------------------------------------------------------


def test_reference_counter_increments_per_destination():
    counter = ReferenceCounter()
    a = [counter.next("+525511111111") for _ in range(3)]
    b = counter.next("+525522222222")
    a.append(counter.next("+525511111111"))
    assert [(x - a[0]) % 256 for x in a] == [0, 1, 2, 3]
    assert b == ReferenceCounter().next("+525522222222")  # deterministic start per destination


def test_reference_counter_wraps():
    counter = ReferenceCounter(bits=8)
    values = [counter.next("x") for _ in range(257)]
    assert sorted(values[:256]) == list(range(256))
    assert values[256] == values[0]
    counter16 = ReferenceCounter(bits=16)
    values = [counter16.next("x") for _ in range(3)]
    assert all(0 <= v < 65536 for v in values) and len(set(values)) == 3
    with pytest.raises(ValueError):
        ReferenceCounter(bits=7)


def test_reference_counter_memory_is_bounded():
    counter = ReferenceCounter(max_destinations=2)
    first = counter.next("a")
    assert counter.next("a") == (first + 1) % 256
    counter.next("b")
    counter.next("c")  # evicts "a", the least recently used
    assert counter.next("a") == first
    assert counter.next("c") == (ReferenceCounter().next("c") + 1) % 256


# --- UDH / TLV parsing -----------------------------------------------------------------------


def test_parse_udh_8bit():
    assert parse_udh(bytes.fromhex("0500032A0302") + b"hi") == (ConcatInfo(0x2A, 3, 2), b"hi")


def test_parse_udh_16bit():
    assert parse_udh(bytes.fromhex("06080412340302") + b"hi") == (ConcatInfo(0x1234, 3, 2), b"hi")


def test_parse_udh_skips_other_ies():
    # application port addressing (IEI 0x05) before the concatenation IE
    sm = bytes.fromhex("0B05040B8423F0000301020" + "2") + b"data"
    assert parse_udh(sm) == (ConcatInfo(1, 2, 2), b"data")
    assert parse_udh(bytes.fromhex("0605040B8423F0") + b"x") == (None, b"x")
    assert parse_udh(b"\x00abc") == (None, b"abc")


@pytest.mark.parametrize(
    "sm",
    [
        b"",
        b"\x06\x00\x03\x01\x02",
        b"\x03\x00\x03\x01",
        b"\x01\x00",
        b"\x04\x00\x02\x01\x02",
        b"\x05\x08\x03\x01\x02\x01",
    ],
)
def test_parse_udh_malformed(sm):
    with pytest.raises(ValueError):
        parse_udh(sm)


@pytest.mark.parametrize("ie", ["00030A0200", "00030A0203", "00030A0000"])
def test_parse_udh_ignores_invalid_seq_or_total(ie):
    # 3GPP TS 23.040: seq 0, seq > total or total 0 void the IE
    assert parse_udh(bytes.fromhex("05" + ie) + b"x") == (None, b"x")


def test_concat_info_from_tlvs():
    assert concat_info_from_tlvs({0x020C: b"\x12\x34", 0x020E: b"\x03", 0x020F: b"\x02"}) == ConcatInfo(
        0x1234, 3, 2
    )
    assert concat_info_from_tlvs({0x020C: b"\x12\x34", 0x020E: b"\x03"}) is None
    assert concat_info_from_tlvs({}) is None
    assert concat_info_from_tlvs({0x020C: b"\x12\x34", 0x020E: b"\x03", 0x020F: b"\x04"}) is None
    with pytest.raises(ValueError):
        concat_info_from_tlvs({0x020C: b"\x12", 0x020E: b"\x03", 0x020F: b"\x02"})


# --- reassembly ------------------------------------------------------------------------------


def test_reassembler_out_of_order():
    r = Reassembler(timeout_seconds=60)
    assert r.add(KEY, ConcatInfo(7, 3, 3), b"c", 0.0) is None
    assert r.add(KEY, ConcatInfo(7, 3, 1), b"a", 1.0) is None
    assert r.add(KEY, ConcatInfo(7, 3, 2), b"b", 2.0) == [b"a", b"b", b"c"]
    assert len(r) == 0


def test_reassembler_ignores_duplicates():
    r = Reassembler(timeout_seconds=60)
    assert r.add(KEY, ConcatInfo(7, 2, 1), b"a", 0.0) is None
    assert r.add(KEY, ConcatInfo(7, 2, 1), b"A", 0.0) is None
    assert r.add(KEY, ConcatInfo(7, 2, 2), b"b", 0.0) == [b"a", b"b"]


def test_reassembler_keeps_groups_apart():
    r = Reassembler(timeout_seconds=60)
    other = ("5599999999", "3110")
    assert r.add(KEY, ConcatInfo(7, 2, 1), b"k7", 0.0) is None
    assert r.add(KEY, ConcatInfo(8, 2, 1), b"k8", 0.0) is None
    assert r.add(other, ConcatInfo(7, 2, 2), b"o7", 0.0) is None
    assert r.add(KEY, ConcatInfo(8, 2, 2), b"k8b", 0.0) == [b"k8", b"k8b"]
    assert len(r) == 2


def test_reassembler_single_part():
    assert Reassembler().add(KEY, ConcatInfo(7, 1, 1), b"x", 0.0) == [b"x"]


def test_reassembler_timeout():
    r = Reassembler(timeout_seconds=60)
    assert r.add(KEY, ConcatInfo(7, 2, 1), b"a", 100.0) is None
    assert r.expire(159.9) == []
    assert r.expire(160.0) == [KEY]
    assert len(r) == 0
    assert r.add(KEY, ConcatInfo(7, 2, 2), b"b", 161.0) is None  # the first part is gone


def test_reassembler_stale_group_restarts_without_expire():
    r = Reassembler(timeout_seconds=60)
    r.add(KEY, ConcatInfo(7, 2, 1), b"old", 0.0)
    assert r.add(KEY, ConcatInfo(7, 2, 2), b"b", 100.0) is None
    assert r.add(KEY, ConcatInfo(7, 2, 1), b"a", 101.0) == [b"a", b"b"]


def test_reassembler_bounded():
    r = Reassembler(timeout_seconds=60, max_groups=2)
    for ref in range(3):
        r.add(KEY, ConcatInfo(ref, 2, 1), b"a", 0.0)
    assert len(r) == 2
    assert r.add(KEY, ConcatInfo(0, 2, 2), b"b", 0.0) is None  # ref 0 was evicted
    assert r.add(KEY, ConcatInfo(2, 2, 2), b"b", 0.0) == [b"a", b"b"]


def test_reassembler_rejects_invalid_info():
    with pytest.raises(ValueError):
        Reassembler().add(KEY, ConcatInfo(1, 2, 3), b"", 0.0)


# --- properties ------------------------------------------------------------------------------


@SETTINGS
@given(MIXED, st.sampled_from(list(ConcatMethod)), st.integers(0, 255))
def test_split_reassemble_round_trip(text, method, reference):
    encoded, parts = _split_off(text, method, reference)
    assert reassemble(parts, encoded.data_coding) == encoded.text == text
    if method is ConcatMethod.PAYLOAD:
        assert len(parts) == 1
        assert b"".join(parts[0].tlvs.values()) + parts[0].short_message == encoded.payload
    else:
        assert len(parts) == encoded.segments
        assert all(on_air_octets(p, encoded.data_coding) <= 140 for p in parts)
    assert [(p.seq, p.total) for p in parts] == [(i, len(parts)) for i in range(1, len(parts) + 1)]


@SETTINGS
@given(MIXED, st.sampled_from([Transliteration.ACCENTS, Transliteration.FULL]))
def test_split_reassemble_with_transliteration(text, mode):
    encoded = encode_text(text, mode)
    parts = split(encoded)
    assert reassemble(parts, encoded.data_coding) == encoded.text
    assert len(parts) == encoded.segments


# --- smpplib cross-check ---------------------------------------------------------------------

smpplib_gsm = pytest.importorskip("smpplib.gsm")


@pytest.mark.parametrize("text", ["a" * 161, "a{" * 60, "á" * 71, "canción " * 30])
def test_same_chunks_as_smpplib_without_its_bugs(text):
    encoded, parts = _split_off(text, ConcatMethod.UDH8)
    theirs, data_coding, esm_class = smpplib_gsm.make_parts(text)
    assert (data_coding, esm_class) == (encoded.data_coding, 0x40)
    assert [p.short_message[6:] for p in parts] == [t[6:] for t in theirs]
    assert [p.short_message[:3] + p.short_message[4:6] for p in parts] == [t[:3] + t[4:6] for t in theirs]


def test_smpplib_splits_escape_pairs_we_do_not():
    text = "a" * 152 + "€" + "b" * 10
    theirs, _, _ = smpplib_gsm.make_parts(text)
    assert theirs[0].endswith(b"a\x1b")
    _, parts = _split_off(text, ConcatMethod.UDH8)
    assert not parts[0].short_message.endswith(b"\x1b")
