"""Zones of the borough: colonias and postal codes (``config/zones/*.csv``), and matching names to them.

A zone is one colonia (asentamiento) of the SEPOMEX catalogue, with its postal code. People write
colonia names in many ways, so matching ignores case, accents, punctuation, a leading "Col." and
the way a section is numbered: "Polanco V Sección", "polanco 5a secc.", "Polanco Quinta", "Polanco V"
and "POLANCO 5" are the same colonia. A name without its section ("Polanco") means every section;
a postal code means every colonia with that code.

:func:`match_zone` is pure and returns every candidate when a name is ambiguous; the caller
decides (an event's area takes them all, an SMS keyword may ask back).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ZONES_FILE = Path(__file__).resolve().parents[2] / "config" / "zones" / "miguel_hidalgo.csv"

_POSTAL_CODE = re.compile(r"^(?:c\.?\s*p\.?\s*)?(\d{5})$", re.IGNORECASE)
_NON_WORD = re.compile(r"[^0-9a-z]+")
_ORDINAL_DIGITS = re.compile(r"^(\d{1,2})(?:a|ra|era|da|do|er|ro|ta|to|va|vo|na|no|o|st|nd|rd|th)?$")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}
_ORDINAL_WORDS = {
    "primera": 1, "primer": 1, "primero": 1, "segunda": 2, "segundo": 2, "tercera": 3, "tercer": 3,
    "tercero": 3, "cuarta": 4, "cuarto": 4, "quinta": 5, "quinto": 5, "sexta": 6, "sexto": 6,
    "septima": 7, "septimo": 7, "setima": 7, "octava": 8, "octavo": 8, "novena": 9, "noveno": 9,
    "decima": 10, "decimo": 10, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5,
    "sixth": 6, "seventh": 7, "eighth": 8,
}  # fmt: skip
_SECTION_WORDS = {"seccion", "secc", "sec", "section", "secion"}
_LEADING_NOISE = {"col", "colonia", "fracc", "fraccionamiento", "barrio", "unidad"}
_TRAILING_NOISE = {"pueblo", "colonia", "equipamiento", "barrio"}
_ABBREVIATIONS = {
    "amp": "ampliacion", "ampl": "ampliacion", "fco": "francisco", "sn": "san", "sto": "santo",
    "sta": "santa", "gral": "general", "pte": "poniente", "nte": "norte",
}  # fmt: skip


def fold(text: str) -> str:
    """Lower case, no accents, single spaces: "Anáhuac I Sección" -> "anahuac i seccion"."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return " ".join(_NON_WORD.sub(" ", stripped).split())


def _section_number(token: str) -> int | None:
    if token in _ROMAN:
        return _ROMAN[token]
    if token in _ORDINAL_WORDS:
        return _ORDINAL_WORDS[token]
    m = _ORDINAL_DIGITS.match(token)
    if m and 0 < int(m.group(1)) <= 20:
        return int(m.group(1))
    return None


def parse_name(text: str) -> tuple[str, int | None]:
    """A colonia name -> (its folded base name, its section number or None)."""
    words = [_ABBREVIATIONS.get(w, w) for w in fold(text).split()]
    while words and words[0] in _LEADING_NOISE:
        words = words[1:]
    while len(words) > 1 and words[-1] in _TRAILING_NOISE:
        words = words[:-1]
    section = None
    for i, word in enumerate(words):
        if word in _SECTION_WORDS:
            before = _section_number(words[i - 1]) if i > 0 else None
            after = _section_number(words[i + 1]) if i + 1 < len(words) else None
            if before is not None and i > 1:
                section, words = before, words[: i - 1] + words[i + 1 :]
            elif after is not None:
                section, words = after, words[:i] + words[i + 2 :]
            else:
                words = words[:i] + words[i + 1 :]
            break
    else:
        if len(words) > 1 and words[-2] != "de":
            number = _section_number(words[-1])
            if number is not None:
                section, words = number, words[:-1]
    return " ".join(words), section


@dataclass(frozen=True, slots=True)
class Zone:
    cp: str
    name: str  # as in the catalogue: "Polanco V Sección"
    type: str = "Colonia"
    base: str = field(default="", compare=False)
    section: int | None = field(default=None, compare=False)

    @classmethod
    def of(cls, cp: str, name: str, type_: str = "Colonia") -> Zone:
        base, section = parse_name(name)
        return cls(cp.strip(), " ".join(name.split()), type_.strip() or "Colonia", base, section)

    @property
    def key(self) -> str:
        """Stable identity across catalogue reloads: postal code and normalised name."""
        return f"{self.cp}:{self.base}:{self.section or ''}"

    @property
    def display_base(self) -> str:
        """The name without its section ("Polanco V Sección" -> "Polanco")."""
        if self.section is None:
            return self.name
        words = self.name.split()
        folded = [fold(w) for w in words]
        for i, w in enumerate(folded):
            if w in _SECTION_WORDS:
                cut = [
                    j for j in (i - 1, i) if 0 <= j < len(words) and _section_number(folded[j]) is not None
                ]
                drop = {i, *cut}
                return " ".join(w for j, w in enumerate(words) if j not in drop)
        return " ".join(words[:-1])


def postal_code(text: str) -> str | None:
    m = _POSTAL_CODE.match(text.strip())
    return m.group(1) if m else None


def match_zone(text: str, zones: Sequence[Zone], *, partial: bool = True) -> list[Zone]:
    """Every zone ``text`` may mean, in catalogue order ([] when none).

    A postal code gives every colonia with it; a name gives the colonia, or all its sections when
    no section is written. With ``partial``, a name that is no colonia's whole name gives the
    colonias whose names contain its words in order ("Madero" -> "Francisco I Madero").
    """
    cp = postal_code(text)
    if cp is not None:
        return [z for z in zones if z.cp == cp]
    base, section = parse_name(text)
    if not base:
        return []
    found = [z for z in zones if z.base == base and (section is None or z.section == section)]
    if found or not partial:
        return found
    wanted = base.split()
    return [
        z for z in zones if _contains(z.base.split(), wanted) and (section is None or z.section == section)
    ]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (optimal string alignment: insert, delete, substitute, swap
    two neighbours) of ``a`` and ``b``; ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


def typo_limit(word: str) -> int:
    """Edits a name of this length may carry and still be suggested: 1 up to 5 letters, 2 up to
    10, 3 beyond."""
    return 1 if len(word) <= 5 else 2 if len(word) <= 10 else 3


def _contains(words: list[str], wanted: list[str]) -> bool:
    n = len(wanted)
    return any(words[i : i + n] == wanted for i in range(len(words) - n + 1))


class ZoneDirectory:
    """The catalogue loaded in memory (86 rows for Miguel Hidalgo)."""

    def __init__(self, zones: Iterable[Zone]):
        self.zones: list[Zone] = []
        seen: set[str] = set()
        for zone in zones:
            if zone.key in seen:
                raise ValueError(f"zone {zone.name!r} ({zone.cp}) is listed twice")
            seen.add(zone.key)
            self.zones.append(zone)

    def __len__(self) -> int:
        return len(self.zones)

    def match(self, text: str, *, partial: bool = True) -> list[Zone]:
        return match_zone(text, self.zones, partial=partial)

    def suggest(self, text: str, limit: int = 5) -> list[str]:
        """Names to offer for a zone not in the catalogue, best first ([] when none is close):
        the colonias whose names contain the words written ("Lomas"), else the names nearest by
        edit distance over the accent-folded catalogue ("Anzurez" -> Anzures, "Polancoo" ->
        Polanco, meaning its sections). About a hundred short comparisons for 86 zones."""
        near = self.match(text, partial=True)
        if near:
            return list(dict.fromkeys(z.name for z in near))[:limit]
        if postal_code(text) is not None:
            return []
        base, section = parse_name(text)
        if len(base) < 3:
            return []
        bound = typo_limit(base)
        exact: dict[str, tuple[int, int]] = {}  # the section written, when one was
        whole: dict[str, tuple[int, int]] = {}  # the colonia (all its sections)
        distances: dict[str, int] = {}  # sections share their base name: compared once
        for order, zone in enumerate(self.zones):
            distance = distances.get(zone.base)
            if distance is None:
                distance = distances[zone.base] = edit_distance(base, zone.base, bound)
            if distance > bound:
                continue
            if section is not None and zone.section == section:
                exact.setdefault(zone.name, (distance, order))
            whole.setdefault(zone.name if zone.section is None else zone.display_base, (distance, order))
        scored = exact or whole
        return sorted(scored, key=scored.__getitem__)[:limit]

    def resolve(
        self, texts: Sequence[str], path: str = "area.zones"
    ) -> tuple[list[Zone], list[tuple[str, str]]]:
        """An event's area -> (the zones, in order without repeats; errors naming ``path[i]``).

        Ambiguous names take every candidate; a name matched only partially, or misspelt, is
        refused with suggestions (a broadcast to the wrong colonias cannot be taken back).
        """
        zones: dict[str, Zone] = {}
        errors: list[tuple[str, str]] = []
        for i, text in enumerate(texts):
            found = self.match(text, partial=False)
            if not found:
                near = self.suggest(text)
                hint = f"; did you mean {', '.join(near)}?" if near else ""
                what = "postal code" if postal_code(text) else "colonia or postal code"
                errors.append((f"{path}[{i}]", f"unknown {what} {text!r} in the zone catalogue{hint}"))
                continue
            zones.update((z.key, z) for z in found)
        return list(zones.values()), errors

    def label(self, text: str) -> str:
        """How a zone written by the CRM reads in a message: the colonia's name, or "C.P. 11000"."""
        cp = postal_code(text)
        if cp is not None:
            return f"C.P. {cp}"
        found = self.match(text, partial=False)
        if len(found) == 1:
            return found[0].name
        if found and len({z.base for z in found}) == 1:
            return found[0].display_base
        return " ".join(text.split())


def load_zones(path: str | Path = DEFAULT_ZONES_FILE) -> ZoneDirectory:
    """Read ``cp,colonia,type`` rows; raises ValueError naming the file and line of a bad row."""
    path = Path(path)
    zones = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"cp", "colonia"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            line = reader.line_num
            cp, name = (row.get("cp") or "").strip(), (row.get("colonia") or "").strip()
            if not re.fullmatch(r"\d{5}", cp):
                raise ValueError(f"{path}:{line}: postal code must be 5 digits, got {cp!r}")
            if not name:
                raise ValueError(f"{path}:{line}: empty colonia name")
            zones.append(Zone.of(cp, name, row.get("type") or "Colonia"))
    try:
        return ZoneDirectory(zones)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
