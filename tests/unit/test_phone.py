import random
import re

import pytest

from gateway.domain.phone import (
    InvalidNumber,
    from_smpp_address,
    mask_msisdn,
    normalize_fast,
    normalize_msisdn,
    to_smpp_address,
)

E164 = "+525512345678"


@pytest.mark.parametrize(
    "raw",
    [
        "5512345678",
        "55 1234 5678",
        "55-1234-5678",
        "55.1234.5678",
        "(55) 1234-5678",
        "  5512345678  ",
        "+525512345678",
        "+52 55 1234 5678",
        "+52 (55) 1234-5678",
        "525512345678",
        "0052 55 1234 5678",
        "00525512345678",
        # retired forms
        "044 55 1234 5678",
        "0445512345678",
        "045 55 1234 5678",
        "01 55 1234 5678",
        "015512345678",
        "+52 1 55 1234 5678",
        "+5215512345678",
        "5215512345678",
        "0052 1 55 1234 5678",
    ],
)
def test_accepted_forms(raw):
    assert normalize_msisdn(raw) == E164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("33 1234 5678", "+523312345678"),  # Guadalajara
        ("81 1234 5678", "+528112345678"),  # Monterrey
        ("222 123 4567", "+522221234567"),  # Puebla, 3-digit area code
    ],
)
def test_other_area_codes(raw, expected):
    assert normalize_msisdn(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("12345", "expected 10 digits"),
        ("551234567", "expected 10 digits"),
        ("55123456789", "expected 10 digits"),
        ("+52 55 1234 567", "expected 10 digits"),
        ("55 1234 abcd", "only digits"),
        ("tel:5512345678", "only digits"),
        ("55+12345678", "'+' only at the start"),
        ("+1 212 555 1234", "only +52"),
        ("+44 20 7946 0958", "only +52"),
        ("0044 20 7946 0958", "only +52"),
        ("+5512345678", "only +52"),  # Brazil, not a forgotten 52
        ("1234567890", "no such area code"),
        ("800 123 4567", "toll-free"),
        ("+52 800 123 4567", "toll-free"),
        ("888 123 4567", "toll-free"),
        ("900 123 4567", "premium-rate"),
        ("300 123 4567", "shared-cost"),
        ("500 123 4567", "personal"),
        ("5" * 60, "only digits"),
    ],
)
def test_refused(raw, reason):
    with pytest.raises(InvalidNumber, match=re.escape(reason)):
        normalize_msisdn(raw)


def test_error_message_names_input_and_accepted_form():
    with pytest.raises(InvalidNumber) as exc:
        normalize_msisdn("12345")
    assert str(exc.value) == (
        "'12345' is not a Mexican mobile number: expected 10 digits, optionally with +52 "
        "(got 5 national digits)"
    )


@pytest.mark.parametrize("raw", [None, 5512345678, 55.0, b"5512345678", ["5512345678"]])
def test_non_string_refused(raw):
    with pytest.raises(InvalidNumber, match="must be text"):
        normalize_msisdn(raw)


def test_invalid_number_is_a_value_error():
    assert issubclass(InvalidNumber, ValueError)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+525512345678", "+52******5678"),
        ("55 1234 5678", "+52******5678"),
        ("+52 1 55 1234 5678", "+52******5678"),
        ("12345", "*****"),  # too short to show anything
        ("123456789012", "********9012"),  # not Mexican: digits masked, last 4 kept
        ("", "***"),
        (None, "***"),
    ],
)
def test_mask(raw, masked):
    assert mask_msisdn(raw) == masked


def test_to_smpp_address():
    assert to_smpp_address(E164) == "525512345678"
    assert to_smpp_address("55 1234 5678") == "525512345678"  # normalised first
    with pytest.raises(InvalidNumber):
        to_smpp_address("+15551234567")


@pytest.mark.parametrize(
    "addr",
    ["525512345678", "5215512345678", "+525512345678", "+5215512345678", "5512345678", "0445512345678"],
)
def test_from_smpp_address(addr):
    assert from_smpp_address(addr) == E164


def test_from_smpp_address_refuses_foreign():
    with pytest.raises(InvalidNumber):
        from_smpp_address("15551234567")


def test_round_trip():
    assert from_smpp_address(to_smpp_address(E164)) == E164


def _answer(normalize, raw: str) -> str:
    """The number, or the reason it is refused."""
    try:
        return normalize(raw)
    except InvalidNumber as exc:
        return str(exc)


def test_the_fast_path_is_exactly_as_strict_as_normalize_msisdn():
    rng = random.Random(6)
    for prefix in range(1000):
        for _ in range(3):
            national = f"{prefix:03d}{rng.randrange(10**7):07d}"
            for raw in (national, "+52" + national):
                assert _answer(normalize_fast, raw) == _answer(normalize_msisdn, raw), raw
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
            assert _answer(normalize_fast, raw) == _answer(normalize_msisdn, raw), raw
    for raw in ("55 1234 5678", "+52 1 55 1234 5678", "044 55 1234 5678", "800 123 4567", "12345", ""):
        assert _answer(normalize_fast, raw) == _answer(normalize_msisdn, raw), raw
