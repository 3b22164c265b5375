"""Field types the input models share: the case event, the subscription requests, an import row.

A type validates one field the same way wherever it appears, so a number or a language written
to the webhook, the subscriptions API or an import file is refused with the same reason.
``Language`` needs the languages with templates in the validation context
(a tuple: ``{"languages": ("es", "en")}``); the models that use it are validated through
:class:`gateway.domain.subscriptions.Catalogue`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, ValidationInfo

from .languages import parse_language, primary_subtag
from .phone import MSISDN_SCHEMA, InvalidNumber, normalize_fast

LANGUAGES = "languages"  # the validation context's key: the languages with templates


def _msisdn(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string with a Mexican phone number")
    try:
        return normalize_fast(value)
    except InvalidNumber as exc:
        raise ValueError(str(exc)) from None


def _language_tag(value: str | None) -> str | None:
    """'es-MX' -> 'es'; whether it has templates is checked where the message is written."""
    return primary_subtag(value) if value else None


def _language(value: str | None, info: ValidationInfo) -> str | None:
    available: tuple[str, ...] | None = (info.context or {}).get(LANGUAGES)
    if available is None:
        raise RuntimeError("Language needs the languages with templates in the validation context")
    return _known_language(value, available)


@lru_cache(maxsize=256)
def _known_language(value: str | None, available: tuple[str, ...]) -> str | None:
    return parse_language(value, available)


# Any common Mexican form -> E.164 (gateway/domain/phone.py).
Msisdn = Annotated[str, BeforeValidator(_msisdn), Field(json_schema_extra=MSISDN_SCHEMA)]

# A language tag, reduced to its primary subtag ("es-MX" -> "es"); empty: none.
LanguageTag = Annotated[str | None, AfterValidator(_language_tag)]

# A language with templates ("es-MX" -> "es"); anything else refused naming the choices.
Language = Annotated[str | None, AfterValidator(_language)]


def field_path(loc: tuple) -> str:
    """("citizen", "msisdn") -> "citizen.msisdn"; ("zones", 1) -> "zones[1]"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(field path, reason) of every error, in the order of the model's fields."""
    return [(field_path(err["loc"]), err["msg"].removeprefix("Value error, ")) for err in exc.errors()]
