"""What a subscription request may say, and how it is read: the rules every way in shares.

Topics AGUA, VIAL, EMERGENCIA and AVISOS, as a citizen writes them (case, accents and a few
synonyms aside: "agua", "Water"); none, ALL or TODO means every topic. Zones by colonia name
(accents and section numbering optional) or postal code; none means every zone; a name that means
several colonias is refused with the choices, an unknown one with the nearest names. A language
must have templates. The SMS keywords (gateway/domain/keywords.py) follow the same rules, asking
back instead of refusing.

The models here validate the CRM's requests (``POST`` / ``DELETE /api/v1/subscriptions``) and an
import file's rows; :meth:`Catalogue.validate` runs them against the zone catalogue and the
languages, so every error names its field (``zones[1]``, ``language``) with the reason. The zones
stay as written; :meth:`Catalogue.zones_of` gives the colonias they mean.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)

from .catalog import TOPICS
from .dates import iso_utc
from .fields import LANGUAGES, Language, Msisdn
from .keywords import MAX_ZONES, topic_word, zone_or_problem
from .zones import Zone, ZoneDirectory

CATALOGUE = "catalogue"  # the validation context's key

TopicName = Literal["AGUA", "VIAL", "EMERGENCIA", "AVISOS"]
M = TypeVar("M", bound=BaseModel)


def every_topic_unless(topic: str | None) -> tuple[str, ...]:
    """None (or "*") means every topic."""
    return TOPICS if topic in (None, "*") else (topic,)


def _unknown_topic(word: str) -> ValueError:
    return ValueError(f"unknown topic {word!r}: expected {', '.join(TOPICS)} (empty: all)")


def read_topic(value: object) -> str | None:
    """One topic as written -> AGUA …; None for every topic (absent, empty, ALL, TODO)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be one of {', '.join(TOPICS)}")
    topic = "*" if value.strip() == "*" else topic_word(value)
    if topic is None:
        raise _unknown_topic(value)
    return None if topic == "*" else topic


@lru_cache(maxsize=256)
def read_topics(text: str) -> tuple[str, ...]:
    """Topics separated by ``;`` ("AGUA; vial") -> canonical topics; none or ALL means every one."""
    wanted: dict[str, None] = {}
    for word in (w.strip() for w in text.split(";")):
        if word:
            topic = topic_word(word)
            if topic is None:
                raise _unknown_topic(word)
            wanted.update(dict.fromkeys(TOPICS if topic == "*" else (topic,)))
    return tuple(wanted) or TOPICS


class Catalogue:
    """What subscription input is checked against: the zone catalogue and the languages with
    templates. A zone as written is resolved once (the last few thousand are remembered)."""

    def __init__(self, zones: ZoneDirectory, languages: Collection[str], remembered: int = 4096):
        self.zones = zones
        self.languages = tuple(languages)
        self._resolved: Callable[[str], tuple[Zone, ...] | str] = lru_cache(maxsize=remembered)(self._resolve)
        self._remembered = remembered
        self._cells: dict[str, tuple[str, ...]] = {}  # import cells validated: a few per file
        self._context = {CATALOGUE: self, LANGUAGES: self.languages}

    def _resolve(self, text: str) -> tuple[Zone, ...] | str:
        found = zone_or_problem(self.zones, text)
        return found if isinstance(found, str) else tuple(found)

    def zone(self, text: str) -> tuple[Zone, ...]:
        """One zone as written -> its colonias (a postal code: all of them); raises ValueError
        naming the choices of an ambiguous name, or the nearest names of an unknown one."""
        found = self._resolved(text)
        if isinstance(found, str):
            raise ValueError(found)
        return found

    def zones_of(self, written: Sequence[str]) -> tuple[Zone, ...]:
        """Every colonia the zones written mean, in order, without repeats (validated input:
        raises ValueError for a zone that is not)."""
        found: dict[str, Zone] = {}
        for text in written:
            found.update((z.key, z) for z in self.zone(text))
        return tuple(found.values())

    def cell(self, text: str, validate: Callable[[str], tuple[str, ...]]) -> tuple[str, ...]:
        """An import file's zones cell, validated once (a cell that fails is not remembered)."""
        found = self._cells.get(text)
        if found is None:
            found = validate(text)
            if len(self._cells) >= self._remembered:
                self._cells.clear()
            self._cells[text] = found
        return found

    def validate(self, model: type[M], data: object) -> M:
        """``model`` from ``data``; raises pydantic's ValidationError (see :func:`field_errors`)."""
        return model.model_validate(data, context=self._context)


def _catalogue(info: ValidationInfo) -> Catalogue:
    catalogue = (info.context or {}).get(CATALOGUE)
    if catalogue is None:
        raise RuntimeError("subscription input is validated through Catalogue.validate")
    return catalogue


def _zone(text: str, info: ValidationInfo) -> str:
    _catalogue(info).zone(text)
    return text


def _zone_list(value: object) -> object:
    """The API's ``zones``: a JSON list of strings; null is none."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of colonia names or postal codes")
    if len(value) > MAX_ZONES:
        raise ValueError(f"at most {MAX_ZONES} zones")
    return value


def _split_zones(value: object) -> object:
    """An import cell "Anzures; 11560" -> its zones."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    return value


def _zones_cell(value: object, validate: ValidatorFunctionWrapHandler, info: ValidationInfo) -> object:
    return _catalogue(info).cell(value, validate) if isinstance(value, str) else validate(value)


def _topics_cell(value: object) -> object:
    return read_topics(value) if isinstance(value, str) else value


def _consent(value: object) -> object:
    if value not in (None, "explicit"):
        raise ValueError('the only value is "explicit" (the citizen asked to be subscribed again)')
    return value


ZoneName = Annotated[str, AfterValidator(_zone)]
Topic = Annotated[
    TopicName | None,
    BeforeValidator(read_topic),
    WithJsonSchema(
        {
            "type": ["string", "null"],
            "description": "AGUA, VIAL, EMERGENCIA or AVISOS as a citizen writes them (case, accents, "
            "synonyms such as WATER aside); absent, empty, null or ALL: every topic",
            "examples": list(TOPICS),
        },
        mode="validation",
    ),
]
Consent = Annotated[Literal["explicit"] | None, BeforeValidator(_consent)]
Moment = Annotated[
    datetime | None,
    PlainSerializer(iso_utc, return_type=str | None),
]


class SubscriptionRequest(BaseModel):
    """``POST /api/v1/subscriptions``: the same rules as the SMS keyword ALTA."""

    model_config = ConfigDict(extra="forbid")
    msisdn: Msisdn = Field(description="any common Mexican form; stored as E.164")
    topic: Topic = Field(None, description="absent, null or ALL: every topic")
    zones: Annotated[list[ZoneName], BeforeValidator(_zone_list)] = Field(
        default_factory=list,
        max_length=MAX_ZONES,
        description=(
            "colonia names (accents and section numbering optional) or postal codes; absent or "
            'empty: every zone. A name that means several colonias ("Polanco") is refused with '
            "the choices."
        ),
    )
    language: Language = Field(None, description="a language with templates: es or en (es-MX is es)")
    consent: Consent = Field(
        None, description="required to subscribe a citizen who opted out: the citizen asked for it"
    )

    @property
    def topics(self) -> tuple[str, ...]:
        return every_topic_unless(self.topic)


class UnsubscribeRequest(BaseModel):
    """``DELETE /api/v1/subscriptions`` (query string or JSON body): no topic is the opt-out."""

    model_config = ConfigDict(extra="forbid")
    msisdn: Msisdn
    topic: Topic = Field(None, description="absent: every topic (the opt-out)")


class UnsubscribeQuery(UnsubscribeRequest):
    """``DELETE /api/v1/subscriptions?msisdn=…&topic=…``: the same request in the query string."""


class SubscriptionsQuery(BaseModel):
    """``GET /api/v1/subscriptions``."""

    model_config = ConfigDict(extra="forbid")
    msisdn: Msisdn = Field(description="the citizen's number, any common Mexican form")


class SubscriberRow(BaseModel):
    """One row of ``smsgw subscribers import``: topics and zones separated by ``;``."""

    model_config = ConfigDict(extra="forbid")
    msisdn: Msisdn
    topics: Annotated[tuple[str, ...], BeforeValidator(_topics_cell)] = TOPICS
    zones: Annotated[tuple[ZoneName, ...], BeforeValidator(_split_zones), WrapValidator(_zones_cell)] = ()
    language: Language = None


class Subscription(BaseModel):
    topic: TopicName
    zone: str | None = Field(description="null: every zone")
    cp: str | None
    zone_id: int | None


class Subscriptions(BaseModel):
    """A citizen's subscriptions and opt-out state, and what a request changed.

    Serialised with ``exclude_unset``: ``opted_out_at`` only for a known number, ``added`` /
    ``opted_in`` only after a POST, ``removed`` / ``cancelled`` only after a DELETE."""

    msisdn: str = Field(description="E.164")
    known: bool = Field(description="the gateway has a record of this number")
    opted_out: bool = Field(description="nothing is sent to this number")
    opted_out_at: Moment = None
    language: str | None
    subscriptions: list[Subscription]
    added: int = Field(0, description="POST: subscriptions added (0: all were there)")
    opted_in: bool = Field(False, description="POST: the citizen had opted out and consented")
    removed: int = Field(0, description="DELETE: subscriptions removed")
    cancelled: int = Field(0, description="DELETE (opt-out): waiting messages cancelled")

    def body(self) -> dict:
        return self.model_dump(mode="json", exclude_unset=True)
