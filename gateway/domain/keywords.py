"""What a citizen's SMS to the short code asks for (docs/keywords.md).

Pure parsing: case, accents, punctuation and extra spaces are ignored; the first word is the
keyword. Acting on the request (subscriptions, replies, confirmations) happens elsewhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from .zones import Zone, ZoneDirectory, postal_code

MAX_ZONES = 50  # zones in one request, by SMS (the first ones written) or by the API


class Intent(StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    HELP = "help"
    STATUS = "status"
    CONFIRM = "confirm"
    DECLINE = "decline"
    UNKNOWN = "unknown"


# keyword -> (intent, language of the reply)
_KEYWORDS: dict[str, tuple[Intent, str]] = {
    "ALTA": (Intent.SUBSCRIBE, "es"),
    "SUSCRIBIR": (Intent.SUBSCRIBE, "es"),
    "SUSCRIBIRME": (Intent.SUBSCRIBE, "es"),
    "START": (Intent.SUBSCRIBE, "en"),
    "SUBSCRIBE": (Intent.SUBSCRIBE, "en"),
    "BAJA": (Intent.UNSUBSCRIBE, "es"),
    "ALTO": (Intent.UNSUBSCRIBE, "es"),
    "CANCELAR": (Intent.UNSUBSCRIBE, "es"),
    "SALIR": (Intent.UNSUBSCRIBE, "es"),
    "STOP": (Intent.UNSUBSCRIBE, "en"),
    "UNSUBSCRIBE": (Intent.UNSUBSCRIBE, "en"),
    "AYUDA": (Intent.HELP, "es"),
    "INFO": (Intent.HELP, "es"),
    "HELP": (Intent.HELP, "en"),
    "ESTADO": (Intent.STATUS, "es"),
    "FOLIO": (Intent.STATUS, "es"),
    "STATUS": (Intent.STATUS, "en"),
    "SI": (Intent.CONFIRM, "es"),
    "CONFIRMO": (Intent.CONFIRM, "es"),
    "CONFIRMAR": (Intent.CONFIRM, "es"),
    "YES": (Intent.CONFIRM, "en"),
    "NO": (Intent.DECLINE, "es"),
}

# Keywords written alike in both languages: the reply goes in the citizen's own language.
NEUTRAL_KEYWORDS = frozenset({"INFO", "NO"})

_TOPIC_WORDS = {
    "AGUA": "AGUA",
    "AGUAS": "AGUA",
    "WATER": "AGUA",
    "VIAL": "VIAL",
    "VIALIDAD": "VIAL",
    "TRAFICO": "VIAL",
    "TRANSITO": "VIAL",
    "TRAFFIC": "VIAL",
    "EMERGENCIA": "EMERGENCIA",
    "EMERGENCIAS": "EMERGENCIA",
    "EMERGENCY": "EMERGENCIA",
    "AVISOS": "AVISOS",
    "AVISO": "AVISOS",
    "NOTICES": "AVISOS",
    "TODO": "*",
    "TODOS": "*",
    "ALL": "*",
}

_POSTAL_CODE = re.compile(r"^\d{5}$")
_FOLIO_CHARS = re.compile(r"[^A-Z0-9._/-]")
_PUNCTUATION = re.compile(r"[^\w\s,;-]")
_FIRST_WORD = re.compile(r"[\W_]*[^\W_]+")


@dataclass(frozen=True, slots=True)
class Request:
    intent: Intent
    language: str = "es"
    keyword: str = ""
    topic: str | None = None  # one of catalog.TOPICS, "*" for all, None when not given
    zones: tuple[str, ...] = field(default=())  # postal codes and colonia names as written
    folio: str | None = None
    text: str = ""

    @property
    def explicit_language(self) -> bool:
        """The keyword says which language to answer in (START: English, ALTA: Spanish); INFO, NO
        and unknown texts do not (the citizen's stored language applies)."""
        return self.keyword in _KEYWORDS and self.keyword not in NEUTRAL_KEYWORDS


def fold(text: str) -> str:
    """Upper case without accents (á->A, ñ->N, ü->U) and with single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.upper().split())


def parse(text: str) -> Request:
    folded = fold(_PUNCTUATION.sub(" ", text.replace("¿", " ").replace("¡", " ")))
    words = folded.replace(",", " , ").replace(";", " ; ").split()
    words = [w.strip("-") for w in words if w.strip("-")]
    if not words:
        return Request(Intent.UNKNOWN, text=text)
    keyword = words[0]
    intent, language = _KEYWORDS.get(keyword, (Intent.UNKNOWN, "es"))
    rest = words[1:]
    if intent in (Intent.SUBSCRIBE, Intent.UNSUBSCRIBE):
        topic = None
        if rest and rest[0] in _TOPIC_WORDS:
            topic = _TOPIC_WORDS[rest[0]]
            rest = rest[1:]
        zones = _zones(rest) if intent is Intent.SUBSCRIBE else ()
        return Request(intent, language, keyword, topic, zones, text=text)
    if intent is Intent.STATUS:
        first = _FIRST_WORD.match(text)
        raw = text[first.end() :] if first else ""
        folio = _FOLIO_CHARS.sub("", fold(raw).replace(" ", "")).strip("._/-") or None
        return Request(intent, language, keyword, folio=folio, text=text)
    return Request(intent, language, keyword, text=text)


def _zones(words: list[str]) -> tuple[str, ...]:
    """Postal codes stand alone; other words form colonia names, split at commas and semicolons.
    The first MAX_ZONES only: a long MO (up to 255 parts) cannot make one message cost seconds."""
    zones: list[str] = []
    name: list[str] = []
    for word in [*words, ","]:
        if word in (",", ";") or _POSTAL_CODE.match(word):
            if name:
                zones.append(" ".join(name))
                name = []
            if _POSTAL_CODE.match(word):
                zones.append(word)
        elif word.upper() not in ("Y", "AND", "EN", "IN", "COL", "COLONIA"):
            name.append(word)
    return tuple(dict.fromkeys(zones))[:MAX_ZONES]


_AUTO_REPLY = re.compile(
    r"AUTO ?(REPLY|RESPONSE|RESPUESTA|MATIC)|RESPUESTA AUTOMATICA|MENSAJE AUTOMATICO|"
    r"OUT OF (THE )?OFFICE|FUERA DE (LA )?OFICINA|NO ESTOY DISPONIBLE|NOT AVAILABLE|"
    r"ESTOY MANEJANDO|I'?M DRIVING|DO NOT REPLY|NO RESPONDA|NO CONTESTE|VACACIONES|ON VACATION"
)


def looks_like_auto_reply(text: str) -> bool:
    """Heuristic: never answer what another machine wrote (two auto-responders would loop)."""
    return bool(_AUTO_REPLY.search(fold(text.replace("-", " "))))


# --- zones written in an SMS (or by a CRM / an import, with the same rules) ------------------------


@dataclass(frozen=True, slots=True)
class ZoneResolution:
    """What the zones written mean: the colonias found, the names that mean several (asked back),
    and the words that match nothing."""

    zones: tuple[Zone, ...] = ()
    ambiguous: tuple[tuple[str, tuple[Zone, ...]], ...] = ()
    unknown: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # how the zones found read in a reply: names, "C.P. 11000"

    @property
    def ok(self) -> bool:
        return not self.ambiguous and not self.unknown


def resolve_zones(directory: ZoneDirectory, written: Sequence[str]) -> ZoneResolution:
    """Zones as a citizen writes them -> colonias. A postal code means every colonia with it; a
    name must mean one colonia ("Polanco" without its section means five: ambiguous, so the
    citizen is asked which); a name that is no colonia's whole name is accepted when exactly one
    colonia contains it ("Madero"); words run together ("Polanco 2 Anzures") are split into names."""
    found: dict[str, Zone] = {}
    ambiguous: list[tuple[str, tuple[Zone, ...]]] = []
    unknown: list[str] = []
    labels: dict[str, None] = {}
    for text in written:
        cp = postal_code(text)
        if cp is not None:
            zones = directory.match(text, partial=False)
            if zones:
                found.update((z.key, z) for z in zones)
                labels[f"C.P. {cp}"] = None
            else:
                unknown.append(text)
            continue
        for segment, zones in _segments(directory, text):
            if not zones:
                unknown.append(segment)
            elif len(zones) == 1:
                found[zones[0].key] = zones[0]
                labels[zones[0].name] = None
            else:
                ambiguous.append((segment, tuple(zones)))
    return ZoneResolution(tuple(found.values()), tuple(ambiguous), tuple(unknown), tuple(labels))


def _candidates(directory: ZoneDirectory, name: str, partial: bool) -> list[Zone]:
    exact = directory.match(name, partial=False)
    if exact or not partial:
        return exact
    return directory.match(name, partial=True)


def _segments(directory: ZoneDirectory, text: str) -> list[tuple[str, list[Zone]]]:
    """The name as one colonia, or else read as several names in a row, longest first; words that
    start no name are kept together as an unknown segment (no zones)."""
    whole = _candidates(directory, text, partial=True)
    if whole:
        return [(text, whole)]
    words = text.split()[:20]
    out: list[tuple[str, list[Zone]]] = []
    pending: list[str] = []
    i = 0
    while i < len(words):
        for j in range(len(words), i, -1):
            name = " ".join(words[i:j])
            zones = _candidates(directory, name, partial=False)
            if not zones:
                near = directory.match(name, partial=True)
                zones = near if len(near) == 1 else []
            if zones:
                break
        else:
            pending.append(words[i])
            i += 1
            continue
        if pending:
            out.append((" ".join(pending), []))
            pending = []
        out.append((name, zones))
        i = j
    if pending:
        out.append((" ".join(pending), []))
    return out


def zone_or_problem(directory: ZoneDirectory, text: str) -> list[Zone] | str:
    """One zone as a CRM or an import file writes it -> its colonias, or why it cannot be used
    (unknown, or a name that means several colonias: the choices are named)."""
    if not text.strip():
        return "empty zone"
    resolution = resolve_zones(directory, [text])
    if resolution.unknown:
        near = directory.suggest(resolution.unknown[0])
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        return f"unknown colonia or postal code {resolution.unknown[0]!r} in the zone catalogue{hint}"
    if resolution.ambiguous:
        written, choices = resolution.ambiguous[0]
        names = ", ".join(f"{z.name} ({z.cp})" for z in choices[:8])
        more = f" and {len(choices) - 8} more" if len(choices) > 8 else ""
        return f"{written!r} means several colonias: {names}{more}; name one or give its postal code"
    return list(resolution.zones)


def topic_word(word: str) -> str | None:
    """A topic as written (AGUA, agua, Water, TODO) -> AGUA … or "*" for every topic; None if unknown."""
    return _TOPIC_WORDS.get(fold(word))
