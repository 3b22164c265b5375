"""What a citizen's SMS to the short code asks for (spec section 4).

Pure parsing: case, accents, punctuation and extra spaces are ignored; the first word is the
keyword. Acting on the request (subscriptions, replies, confirmations) happens elsewhere.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum


class Intent(StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    HELP = "help"
    STATUS = "status"
    CONFIRM = "confirm"
    DECLINE = "decline"
    UNKNOWN = "unknown"


TOPICS = ("AGUA", "VIAL", "EMERGENCIA", "AVISOS")

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
    "YES": (Intent.CONFIRM, "en"),
    "NO": (Intent.DECLINE, "es"),
}

_TOPIC_WORDS = {
    "AGUA": "AGUA",
    "WATER": "AGUA",
    "VIAL": "VIAL",
    "VIALIDAD": "VIAL",
    "TRAFICO": "VIAL",
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


@dataclass(frozen=True, slots=True)
class Request:
    intent: Intent
    language: str = "es"
    keyword: str = ""
    topic: str | None = None  # one of TOPICS, "*" for all, None when not given
    zones: tuple[str, ...] = field(default=())  # postal codes and colonia names as written
    folio: str | None = None
    text: str = ""


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
        raw = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
        folio = _FOLIO_CHARS.sub("", fold(raw).replace(" ", "")).strip("._/-") or None
        return Request(intent, language, keyword, folio=folio, text=text)
    return Request(intent, language, keyword, text=text)


def _zones(words: list[str]) -> tuple[str, ...]:
    """Postal codes stand alone; other words form colonia names, split at commas and semicolons."""
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
    return tuple(dict.fromkeys(zones))


_AUTO_REPLY = re.compile(
    r"AUTO ?(REPLY|RESPONSE|RESPUESTA|MATIC)|RESPUESTA AUTOMATICA|MENSAJE AUTOMATICO|"
    r"OUT OF (THE )?OFFICE|FUERA DE (LA )?OFICINA|NO ESTOY DISPONIBLE|NOT AVAILABLE|"
    r"ESTOY MANEJANDO|I'?M DRIVING|DO NOT REPLY|NO RESPONDA|NO CONTESTE|VACACIONES|ON VACATION"
)


def looks_like_auto_reply(text: str) -> bool:
    """Heuristic: never answer what another machine wrote (two auto-responders would loop)."""
    return bool(_AUTO_REPLY.search(fold(text.replace("-", " "))))
