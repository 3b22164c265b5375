"""The languages messages are written in: those with templates (``<templates directory>/<lang>/``).

One rule for every way a language reaches the gateway (an event's ``citizen.language``, the
subscriptions API's ``language``, the import's ``language`` column): a language tag whose primary
subtag has templates, case and region aside ("es-MX" and "ES" are "es"); anything else is refused
naming the field, never stored and sent in another language.
"""

from __future__ import annotations

import re
from collections.abc import Collection

_TAG = re.compile(r"([A-Za-z]{2})(?:[-_][A-Za-z0-9]{2,8})?")


def primary_subtag(value: str) -> str:
    """'es-MX', 'EN', 'en_US' -> 'es' / 'en'; raises ValueError for what is no language tag."""
    m = _TAG.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"expected a language such as es or es-MX, got {value!r}")
    return m.group(1).lower()


def choices(available: Collection[str]) -> str:
    """['es', 'en'] -> 'es or en'."""
    names = list(available)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def parse_language(value: object, available: Collection[str]) -> str | None:
    """A language as written -> the templates' language ('es-MX' -> 'es'); None or '' -> None.
    Raises ValueError naming the languages there are:
    "expected es or en (the languages with templates), got 'fr'"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    expected = f"expected {choices(available)} (the languages with templates)"
    if not isinstance(value, str):
        raise ValueError(expected)
    try:
        language = primary_subtag(value)
    except ValueError:
        raise ValueError(f"{expected}, got {value!r}") from None
    if language not in available:
        raise ValueError(f"{expected}, got {value!r}")
    return language
