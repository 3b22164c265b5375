"""Mexican phone numbers: normalisation to E.164, masking, SMPP address forms.

Every number the gateway stores is E.164 ``+52`` followed by ten digits. Input is accepted in any
common Mexican form, including the prefixes retired in 2019-2020 (``044``/``045``/``01`` and the
mobile ``1`` after ``+52``), which ``phonenumbers`` rejects and are therefore stripped first.

:func:`normalize_fast` gives :func:`normalize_msisdn`'s answers without phonenumbers' parser for
the common forms (``+52XXXXXXXXXX``, ten digits): the bulk import and every input model use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import phonenumbers
from phonenumbers import PhoneNumberType

__all__ = [
    "MSISDN_SCHEMA",
    "InvalidNumber",
    "from_smpp_address",
    "mask_msisdn",
    "normalize_fast",
    "normalize_msisdn",
    "to_smpp_address",
]

_EXPECTED = "expected 10 digits, optionally with +52"
_ALLOWED_CHARS = re.compile(r"[\d\s\-.()+]*")
_E164_MX = re.compile(r"\+52\d{10}")
# Geographic MX numbers are all FIXED_LINE_OR_MOBILE (mobile and landline cannot be told apart).
_SMS_CAPABLE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_TYPE_NAMES = {
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal (500) number",
    PhoneNumberType.VOIP: "a VoIP number",
    PhoneNumberType.UAN: "a corporate (UAN) number",
    PhoneNumberType.FIXED_LINE: "a landline",
}
_MAX_INPUT = 40

# What a number may look like before normalize_msisdn checks it: the JSON schema of an msisdn field.
MSISDN_SCHEMA = {
    "pattern": r"^\s*\+?[\s().-]*(?:[0-9][\s().-]*){10,}$",
    "description": (
        "any common Mexican form: 10 digits, optionally with +52 (or the retired 044, 045, 01, or "
        "the mobile 1 after +52), spaces, dashes, dots and parentheses; stored as E.164"
    ),
    "examples": ["55 1234 5678", "+52 1 55 1234 5678"],
}


class InvalidNumber(ValueError):
    """The input is not a Mexican number that can receive SMS."""


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= _MAX_INPUT else raw[:_MAX_INPUT] + "…")


def _national_digits(raw: str) -> str:
    """Strip separators and every accepted prefix; returns what should be the 10 national digits."""
    s = raw.strip()
    if not s:
        raise InvalidNumber(f"empty phone number: {_EXPECTED}")
    if len(s) > _MAX_INPUT or not _ALLOWED_CHARS.fullmatch(s):
        raise InvalidNumber(
            f"{_shown(s)} is not a Mexican mobile number: only digits, spaces, dashes, dots and "
            f"parentheses are allowed; {_EXPECTED}"
        )
    if "+" in s[1:]:
        raise InvalidNumber(f"{_shown(s)} is not a Mexican mobile number: '+' only at the start; {_EXPECTED}")
    digits = re.sub(r"\D", "", s)
    international = None
    if s.startswith("+"):
        international = digits
    elif digits.startswith("00"):
        international = digits[2:]
    if international is not None:
        if not international.startswith("52"):
            raise InvalidNumber(f"{_shown(s)} is not a Mexican number: only +52 numbers are accepted")
        national = international[2:]
        if len(national) == 11 and national.startswith("1"):  # retired mobile '1': +52 1 55 …
            national = national[1:]
        return national
    if len(digits) == 12 and digits.startswith("52"):
        return digits[2:]
    if len(digits) == 13 and digits.startswith("521"):
        return digits[3:]
    if len(digits) == 13 and digits.startswith(("044", "045")):  # retired mobile prefixes
        return digits[3:]
    if len(digits) == 12 and digits.startswith("01"):  # retired long-distance prefix
        return digits[2:]
    return digits


def normalize_msisdn(raw: str) -> str:
    """Any common Mexican form -> E.164 ``+52XXXXXXXXXX``; raises InvalidNumber."""
    if not isinstance(raw, str):
        raise InvalidNumber(f"phone number must be text, not {type(raw).__name__}: {_EXPECTED}")
    national = _national_digits(raw)
    if len(national) != 10:
        raise InvalidNumber(
            f"{_shown(raw.strip())} is not a Mexican mobile number: {_EXPECTED} "
            f"(got {len(national)} national digits)"
        )
    number = phonenumbers.parse("+52" + national)
    # number_type() is is_valid_number()'s own test (UNKNOWN = no such series): one lookup, not two
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        raise InvalidNumber(
            f"{_shown(raw.strip())} is not a Mexican mobile number: no such area code or series; {_EXPECTED}"
        )
    if kind not in _SMS_CAPABLE:
        what = _TYPE_NAMES.get(kind, "not a mobile number")
        raise InvalidNumber(f"{_shown(raw.strip())} cannot receive SMS: it is {what}")
    return "+52" + national  # E.164 of a valid +52 number: the ten national digits


# --- the fast path, exactly as strict -------------------------------------------------------------


def _mx_type_check() -> Callable[[str], bool] | None:
    """phonenumbers' own type test (``_number_type_helper``) for ten national digits, with the
    patterns of its MX metadata compiled once: the test normalize_msisdn runs after parsing
    "+52" + the digits, and the same answer (tests/unit/test_phone.py checks every 3-digit
    prefix against normalize_msisdn). None when the metadata cannot be read that way."""
    try:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region("MX")
    except Exception:  # pragma: no cover - depends on the phonenumbers version
        return None
    if metadata is None or metadata.national_prefix_for_parsing:  # parsing could change the digits
        return None  # pragma: no cover

    def spec(desc) -> tuple[tuple[int, ...], str] | None:  # (possible lengths, pattern)
        if desc is None or not desc.national_number_pattern:
            return None
        return tuple(desc.possible_length or ()), desc.national_number_pattern

    def tester(*descs) -> Callable[[str], bool]:
        """Whether a number matches any of ``descs``: one regular expression per length."""
        specs = [s for s in map(spec, descs) if s is not None]
        by_length: dict[int, re.Pattern | None] = {}

        def test(national: str) -> bool:
            n = len(national)
            if n not in by_length:
                patterns = [p for lengths, p in specs if not lengths or n in lengths]
                by_length[n] = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None
            pattern = by_length[n]
            return pattern is not None and pattern.fullmatch(national) is not None

        return test

    general = tester(metadata.general_desc)
    kinds = (
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
    )
    excluded = tester(*(getattr(metadata, k, None) for k in kinds))
    fixed, mobile = tester(metadata.fixed_line), tester(metadata.mobile)
    same = bool(metadata.same_mobile_and_fixed_line_pattern)

    def sms_capable(national: str) -> bool:  # MOBILE or FIXED_LINE_OR_MOBILE
        if not general(national) or excluded(national):
            return False
        if fixed(national):
            return same or mobile(national)
        return not same and mobile(national)

    return sms_capable


_FAST_FORMS = re.compile(r"(?:\+52)?([2-9]\d{9})")
_is_sms_capable = _mx_type_check()


def normalize_fast(raw: str) -> str:
    """normalize_msisdn(raw), faster (raises InvalidNumber with normalize_msisdn's message).

    normalize_msisdn strips separators and the accepted prefixes, requires ten digits, then asks
    phonenumbers the type of "+52" + those digits; here the same stripping (the very function) and
    the same type test run without phonenumbers' parser. Anything the fast path does not accept is
    handed to normalize_msisdn, so the answer and the error are always its own."""
    if _is_sms_capable is not None and isinstance(raw, str):
        m = _FAST_FORMS.fullmatch(raw)
        if m is not None:
            national = m.group(1)
        else:
            try:
                national = _national_digits(raw)
            except (InvalidNumber, TypeError, AttributeError):
                return normalize_msisdn(raw)
        if len(national) == 10 and national.isdigit() and _is_sms_capable(national):
            return "+52" + national
    return normalize_msisdn(raw)


def mask_msisdn(e164_or_raw: str) -> str:
    """'+525512345678' -> '+52******5678'. Never raises; unparseable input keeps at most 4 digits."""
    if not isinstance(e164_or_raw, str):
        return "***"
    try:
        e164 = normalize_msisdn(e164_or_raw)
    except InvalidNumber:
        digits = re.sub(r"\D", "", e164_or_raw)
        if len(digits) < 8:
            return "*" * len(digits) if digits else "***"
        return "*" * (len(digits) - 4) + digits[-4:]
    return e164[:3] + "*" * 6 + e164[-4:]


def to_smpp_address(e164: str) -> str:
    """E.164 -> the SMPP destination_addr for TON international / NPI E.164: '525512345678'."""
    if isinstance(e164, str) and _E164_MX.fullmatch(e164):
        return e164[1:]
    return normalize_msisdn(e164)[1:]


def from_smpp_address(addr: str) -> str:
    """An MO / receipt source address in any form (525512345678, 5215512345678, +52…, 5512345678) -> E.164."""
    return normalize_msisdn(addr)
