"""SMSC message ids: what is usable, the matching form, hex vs decimal, and learning a carrier's habit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smpp_client.message_ids import (
    ReceiptIdRelations,
    Relation,
    candidate_forms,
    canonical,
    describe,
    submitted_form,
    usable,
    usable_bytes,
)

DEC_HEX, HEX_DEC, SAME = (
    Relation.SUBMIT_DECIMAL_RECEIPT_HEX,
    Relation.SUBMIT_HEX_RECEIPT_DECIMAL,
    Relation.SAME,
)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (b"1", True),
        (b"a" * 64, True),
        (b"3ac1dcf9-0000:15_X.y", True),
        (b"a" * 65, False),
        (b"", False),
        (b"ab cd", False),
        (b"caf\xe9", False),
        (b"a\x00b", False),
        (b"a\x7f", False),
    ],
)
def test_a_usable_id_is_1_to_64_visible_ascii_characters(raw, ok):
    assert usable_bytes(raw) is ok
    assert usable(raw.decode("latin-1")) is ok


def test_describe_is_bounded_and_printable():
    text = describe(b"\xff" * 5000)
    assert text.startswith("5000 octets:") and len(text) < 130 and text.isprintable()


def test_canonical_form():
    assert [canonical(i) for i in ("00001A2B", "abc", "0", "000")] == ["1a2b", "abc", "0", "0"]


def test_forms_under_each_relation():
    assert submitted_form("1A2B", SAME) == "1a2b"
    assert submitted_form("1a2b", DEC_HEX) == "6699"
    assert submitted_form("6699", HEX_DEC) == "1a2b"
    assert submitted_form("1a2b", HEX_DEC) is None  # not decimal
    assert submitted_form("hst-1", DEC_HEX) is None
    assert submitted_form("f" * 64, DEC_HEX) is None  # 78 decimal digits: no stored id is that long
    assert submitted_form("9" * 64, HEX_DEC) == format(int("9" * 64), "x")
    with pytest.raises(ValueError):
        submitted_form("1", Relation.AUTO)


def test_candidate_forms():
    assert candidate_forms("16") == {SAME: "16", DEC_HEX: "22", HEX_DEC: "10"}
    assert candidate_forms("1a") == {SAME: "1a", DEC_HEX: "26"}
    assert candidate_forms("abc-1") == {SAME: "abc-1"}
    assert set(candidate_forms("7").values()) == {"7"}  # one digit reads the same in both bases


@given(st.integers(min_value=0, max_value=10**30))
def test_a_number_written_in_either_base_comes_back_to_the_submit_form(n):
    assert submitted_form(format(n, "x"), DEC_HEX) == str(n)
    assert submitted_form(str(n), HEX_DEC) == format(n, "x")
    assert submitted_form(str(n).zfill(20), SAME) == canonical(str(n))


def test_a_relation_is_learned_from_agreeing_evidence_and_configuration_wins():
    relations = ReceiptIdRelations({"movistar": "same"}, learn_after=3)
    assert relations.relation("telcel") is Relation.AUTO
    assert relations.observe("telcel", DEC_HEX) is None
    assert relations.observe("telcel", DEC_HEX) is None
    assert relations.observe("telcel", DEC_HEX) is DEC_HEX
    assert relations.relation("telcel") is DEC_HEX
    assert relations.observe("telcel", SAME) is None  # learned: no more evidence taken
    assert relations.observe("movistar", DEC_HEX) is None
    assert relations.snapshot() == {"telcel": DEC_HEX, "movistar": SAME}


def test_conflicting_evidence_needs_a_clear_majority():
    relations = ReceiptIdRelations(learn_after=3)
    for relation in (SAME, DEC_HEX, SAME, SAME):
        assert relations.observe("telcel", relation) is None  # 3 against 1: not four times as many
    assert relations.relation("telcel") is Relation.AUTO
    assert relations.observe("telcel", SAME) is SAME  # 4 against 1
