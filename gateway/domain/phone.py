"""Mexican phone numbers: normalisation to E.164, masking, SMPP address forms.

Every number the gateway stores is E.164 ``+52`` followed by ten digits. Input is accepted in any
common Mexican form, including the prefixes retired in 2019-2020 (``044``/``045``/``01`` and the
mobile ``1`` after ``+52``), which ``phonenumbers`` rejects and are therefore stripped first.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

__all__ = [
    "MSISDN_SCHEMA",
    "InvalidNumber",
    "from_smpp_address",
    "mask_msisdn",
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
