"""Citizens' SMS to the short code: what each keyword does, and the reply (docs/keywords.md).

Every citizen's message (MO), reassembled and decoded by the link (smpp_client/inbound.py), arrives at
:meth:`CitizenInbox.handle`. The keyword is parsed (gateway/domain/keywords.py) and the zones are
resolved before the database; then ONE transaction stores the MO with what it was understood as
(``mobile_messages``), acts (subscriptions, opt-out, the appointment's answer and its CRM
callback), records the consent ledger and queues the reply. If anything fails before the commit the
handler raises and the SMSC sends the MO again; nothing was half-applied.

Decisions (where the issue is silent):

- **Resends.** An SMSC resends an MO whose deliver_sm_resp it did not get, also after we committed.
  The same text as that number's latest message, again within ``[replies]
  duplicate_window_seconds`` (120 s), is stored as ``duplicate`` and does nothing else
  (deliver_sm carries no id of its own). Any other message between makes it a new one: ALTA,
  BAJA, ALTA within a minute subscribes again.
- **Replies** are ordinary outbox messages at HIGH priority, with the HIGH validity, sent at once
  even in quiet hours (a citizen who just wrote expects the answer), in the keyword's language
  (START / STOP / HELP / YES / STATUS: English; ALTA, BAJA, ...: Spanish; INFO, NO and anything
  else: the citizen's stored language). A new citizen's language is the keyword's.
- **Loop guard.** Texts that look like an auto-reply get no answer and do nothing (except an
  opt-out keyword, which is honoured silently). Texts not understood get the help text at most
  once per ``help_interval_minutes`` (60) per number; and no number gets more than
  ``max_per_day`` (10) replies in 24 hours, whatever it sends (the action is still done). All of
  this is counted in the database (``mobile_messages``), so several processes agree.
- **Opted-out numbers** still get answers to keywords they send (AYUDA, ESTADO, SI / NO, a
  repeated BAJA), never the help text for unknown texts, and nothing else; ALTA / START is
  explicit consent again.
- **BAJA** without a topic (or BAJA TODO) is the opt-out; any word after BAJA that is not a topic
  also means everything (an opt-out is never misread as less).
- **Zones.** A postal code means every colonia with it; a name must mean one colonia: "Polanco"
  alone means five sections and is asked back ("Polanco: ¿I, II, III, IV o V Sección?"), and
  nothing is subscribed until the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection, and_, func, insert, select

from config.settings import RepliesSettings
from gateway import clock
from gateway.domain.catalog import TOPICS
from gateway.domain.composer import ComposedText, zones_label
from gateway.domain.keywords import (
    Intent,
    Request,
    ZoneResolution,
    fold,
    looks_like_auto_reply,
    parse,
    resolve_zones,
)
from gateway.domain.notices import NoticePolicy
from gateway.domain.preview import TemplateTooLong, worst_case_context
from gateway.domain.status import Priority
from gateway.domain.templates import clip
from gateway.domain.zones import Zone
from gateway.store import appointments, consent, outbox
from gateway.store.db import Database
from gateway.store.models import appointments as appointments_table
from gateway.store.models import cases, mobile_messages
from gateway.store.subscriptions import subscribe, unsubscribe
from gateway.store.zones import ids_of

if TYPE_CHECKING:
    from crm_adapters.callbacks import CallbackQueue

log = structlog.get_logger("replies")

REPLY_TEMPLATES = (
    "reply.help",
    "reply.subscribed",
    "reply.ambiguous_zone",
    "reply.unknown_zone",
    "reply.unsubscribed",
    "reply.opted_out",
    "reply.status",
    "reply.not_found",
    "reply.status_usage",
    "reply.confirmed",
    "reply.declined",
)
ONE_PART = ("reply.help",)  # AYUDA: the keywords and the city's phone in one segment (issue 6)

_E164_MX = re.compile(r"^\+52\d{10}$")
_ROMAN = ("", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")
_OR = {"es": "o", "en": "or"}
_ALL_WORD = {"es": "TODO", "en": "ALL"}
QUESTION_MAX = 110  # characters of the choices in an "which colonia?" reply
SUGGESTION_MAX = 80  # characters of the names offered for a misspelt colonia


# --- outcomes (mobile_messages.outcome) -------------------------------------------------------------

SUBSCRIBED, AMBIGUOUS_ZONE, UNKNOWN_ZONE = "subscribed", "ambiguous_zone", "unknown_zone"
UNSUBSCRIBED, OPTED_OUT, HELP = "unsubscribed", "opted_out", "help"
STATUS, NOT_FOUND, STATUS_USAGE = "status", "status_not_found", "status_usage"
CONFIRMED, DECLINED, NOTHING_PENDING = "confirmed", "declined", "nothing_pending"
UNKNOWN, AUTO_REPLY, DUPLICATE, NOT_A_MOBILE = "unknown", "auto_reply", "duplicate", "not_a_mobile"


@dataclass(slots=True)
class Incoming:
    carrier: str | None
    msisdn: str
    text: str
    received_at: datetime
    request: Request
    zones: ZoneResolution | None = None


@dataclass(slots=True)
class Handled:
    """What one MO did: its row, the outcome, the reply queued (if any)."""

    mobile_message_id: int
    outcome: str
    reply_kind: str | None = None
    reply_message_id: int | None = None
    reply_text: str | None = None
    suppressed: str | None = None  # why no reply: capped, help_recently_sent, auto_reply, …
    callbacks: int = 0


@dataclass(slots=True)
class _Plan:
    outcome: str
    understood: dict = field(default_factory=dict)
    reply: str | None = None  # template
    context: dict = field(default_factory=dict)
    consent: list[dict] = field(default_factory=list)  # ledger rows without mobile_message_id
    callbacks: int = 0
    always_reply: bool = True  # False: the help text for a text not understood (once an hour)


def _norm_folio(folio: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", fold(folio))


class CitizenInbox:
    """Turns a citizen's SMS into actions and a reply (one transaction per MO)."""

    def __init__(
        self,
        db: Database,
        policy: NoticePolicy,
        settings: RepliesSettings | None = None,
        *,
        max_segments: int = 3,
        on_queued: Callable[[], None] = lambda: None,
        callbacks: CallbackQueue | None = None,
        on_callbacks: Callable[[], None] = lambda: None,
    ):
        self.db = db
        self.policy = policy
        self.settings = settings or RepliesSettings()
        self.max_segments = max_segments
        self.on_queued = on_queued  # a reply queued: wake the dispatcher
        self.callbacks = callbacks  # what the CRMs are told (SI / NO, messages an opt-out cancelled)
        self.on_callbacks = on_callbacks
        self.handled: dict[str, int] = {}  # outcome -> count, for /metrics and tests

    @property
    def composer(self):
        return self.policy.composer

    @property
    def status_hook(self) -> consent.StatusHook | None:
        return self.callbacks.message_status if self.callbacks is not None else None

    # --- start-up check -----------------------------------------------------------------------

    def check_templates(self) -> dict[tuple[str, str], ComposedText]:
        """Render every reply template in every language with the longest values accepted;
        raises TemplateTooLong when one can exceed [templates] max_segments, or when the help
        text can take more than one part. Returns the worst cases."""
        out, problems = {}, []
        renderer = self.composer.renderer
        for language in renderer.languages():
            for name in REPLY_TEMPLATES:
                if not renderer.has(name, language):
                    if language == "es":
                        problems.append(f"{language}/{name}.txt: missing (Spanish is the fallback language)")
                    continue
                try:
                    worst = max(
                        (self._render(name, language, c) for c in self._worst_contexts(name, language)),
                        key=lambda t: (t.segments, len(t.body)),
                    )
                except Exception as exc:
                    problems.append(f"{language}/{name}.txt: does not render: {type(exc).__name__}: {exc}")
                    continue
                limit = 1 if name in ONE_PART else self.max_segments
                if worst.segments > limit:
                    problems.append(
                        f"{language}/{name}.txt: can take {worst.segments} parts ({len(worst.body)} "
                        f"characters, {worst.encoding}); at most {limit} allowed"
                    )
                out[(name, language)] = worst
        if problems:
            raise TemplateTooLong("; ".join(problems))
        return out

    def _worst_contexts(self, name: str, language: str) -> list[dict]:
        """The longest values accepted; for a template with optional parts, also without them."""
        worst = self._worst_context(language)
        if name == "reply.unknown_zone":
            suggested = {"suggestion": "S" * SUGGESTION_MAX, "example": "SUSCRIBIR EMERGENCIA " + "X" * 50}
            return [{**worst, **suggested}, worst]
        return [worst]

    def _worst_context(self, language: str) -> dict:
        base = worst_case_context(self.composer, "appointment.scheduled", language)
        return {
            "folio": base["folio"],
            "category": base["category"],
            "status": base["status"],
            "progress": 100,
            "resolved_on": None,
            "closed": False,
            "appointment_at": base["appointment_at"],
            "place": base["place"],
            "topics": "EMERGENCIA, AVISOS y AGUA",
            "all_topics": False,
            "topic": "EMERGENCIA",
            "zone_labels": base["zone_labels"],
            "question": "Q" * QUESTION_MAX,
            "example": "SUSCRIBIR EMERGENCIA " + "X" * 30 + " 10",
            "zone": "Z" * 60,
            "keyword": "SUSCRIBIR",
            "suggestion": None,
        }

    def _render(self, name: str, language: str, context: dict) -> ComposedText:
        values = {
            "city_phone": self.settings.city_phone,
            "privacy_url": self.settings.privacy_url,
            "zone_labels": (),
            **context,
        }
        return self.composer.render(name, language, values)

    # --- one MO ---------------------------------------------------------------------------------

    async def handle(self, carrier: str | None, msisdn: str, text: str, received_at: datetime) -> Handled:
        """Raises when the MO could not be stored (the SMSC then sends it again)."""
        request = parse(text)
        zones = None
        if request.intent is Intent.SUBSCRIBE and request.zones:
            zones = resolve_zones(self.policy.zones, request.zones)
        incoming = Incoming(carrier, msisdn, text, received_at, request, zones)
        result = await self.db.run(self.apply, incoming, clock.utcnow())
        self.handled[result.outcome] = self.handled.get(result.outcome, 0) + 1
        if result.reply_message_id is not None:
            self.on_queued()
        if result.callbacks:
            self.on_callbacks()
        log.info(  # never the text: it is personal data
            "citizen message handled",
            intent=request.intent.value,
            outcome=result.outcome,
            reply=result.reply_kind,
            suppressed=result.suppressed,
        )
        return result

    def apply(self, conn: Connection, mo: Incoming, now: datetime) -> Handled:
        """All of one MO's work, in the caller's transaction."""
        request = mo.request
        understood: dict = {"keyword": request.keyword or None}
        if not _E164_MX.match(mo.msisdn):  # cannot be answered (nor be a citizen): stored only
            return self._store(conn, mo, None, _Plan(NOT_A_MOBILE, understood), now)
        language_if_new = request.language if request.explicit_language else "es"
        citizen = consent.lock_citizen(conn, mo.msisdn, language_if_new, now)  # one MO per number at a time
        if self._duplicate(conn, mo):
            return self._store(conn, mo, citizen, _Plan(DUPLICATE, understood), now)
        language = request.language if request.explicit_language else citizen.language
        auto = looks_like_auto_reply(mo.text)
        if auto and request.intent is not Intent.UNSUBSCRIBE:
            plan = _Plan(AUTO_REPLY, understood)
        else:
            plan = self._act(conn, mo, citizen, language, understood, now)
        suppressed = None
        if auto:
            suppressed, plan.reply = AUTO_REPLY, None
        elif plan.reply is not None:
            suppressed = self._suppressed(conn, mo, citizen, plan)
            if suppressed:
                plan.reply = None
        if suppressed:
            plan.understood["reply"] = suppressed
        return self._store(conn, mo, citizen, plan, now, language, suppressed)

    def _duplicate(self, conn: Connection, mo: Incoming) -> bool:
        """A resend: the same text as this number's latest message (resends of it aside), again
        within the window; any other message between makes it a new one."""
        window = self.settings.duplicate_window_seconds
        if window <= 0:
            return False
        m = mobile_messages.c
        latest = conn.execute(
            select(m.text)
            .where(
                m.msisdn == mo.msisdn,
                m.received_at >= mo.received_at - timedelta(seconds=window),
                m.received_at <= mo.received_at,
                m.outcome != DUPLICATE,
            )
            .order_by(m.received_at.desc(), m.id.desc())
            .limit(1)
        ).first()
        return latest is not None and latest.text == mo.text

    def _suppressed(
        self, conn: Connection, mo: Incoming, citizen: consent.Citizen, plan: _Plan
    ) -> str | None:
        m = mobile_messages.c
        if not plan.always_reply:
            if citizen.opted_out:
                return "opted_out"
            since = mo.received_at - timedelta(minutes=self.settings.help_interval_minutes)
            recent = conn.execute(
                select(m.id)
                .where(
                    m.msisdn == mo.msisdn,
                    m.received_at > since,
                    m.intent == Intent.UNKNOWN.value,
                    m.reply_message_id.is_not(None),
                )
                .limit(1)
            ).first()
            if recent is not None:
                return "help_recently_sent"
        replies = conn.execute(
            select(func.count())
            .select_from(mobile_messages)
            .where(
                m.msisdn == mo.msisdn,
                m.received_at > mo.received_at - timedelta(hours=24),
                m.reply_message_id.is_not(None),
            )
        ).scalar_one()
        if replies >= self.settings.max_per_day:
            return "capped"
        return None

    def _store(
        self,
        conn: Connection,
        mo: Incoming,
        citizen: consent.Citizen | None,
        plan: _Plan,
        now: datetime,
        language: str | None = None,
        suppressed: str | None = None,
    ) -> Handled:
        reply_id, reply_text = None, None
        if plan.reply is not None and citizen is not None:
            text = self._render(plan.reply, language or citizen.language, plan.context)
            expires = now + self.policy.validity.validity(Priority.HIGH)
            (reply_id,) = outbox.enqueue(
                conn,
                [
                    {
                        "citizen_id": citizen.id,
                        "msisdn": mo.msisdn,
                        "language": language or citizen.language,
                        "body": text.body,
                        "encoding": text.encoding,
                        "segments": text.segments,
                        "priority": int(Priority.HIGH),
                        "expires_at": expires,
                    }
                ],
                now,
            )
            reply_text = text.body
        mo_id = conn.execute(
            insert(mobile_messages)
            .values(
                msisdn=mo.msisdn[:32],
                citizen_id=citizen.id if citizen else None,
                carrier=mo.carrier,
                text=mo.text,
                received_at=mo.received_at,
                keyword=(mo.request.keyword or None) and mo.request.keyword[:16],
                intent=mo.request.intent.value,
                language=language,
                understood=plan.understood,
                outcome=plan.outcome,
                reply_message_id=reply_id,
                reply_kind=plan.reply if reply_id else None,
            )
            .returning(mobile_messages.c.id)
        ).scalar_one()
        if plan.consent and citizen is not None:
            consent.record_many(
                conn,
                [
                    {
                        "citizen_id": citizen.id,
                        "channel": consent.SMS,
                        "carrier": mo.carrier,
                        "raw": mo.text,
                        "mobile_message_id": mo_id,
                        "at": now,
                        **row,
                    }
                    for row in plan.consent
                ],
            )
        return Handled(
            mo_id,
            plan.outcome,
            plan.reply if reply_id else None,
            reply_id,
            reply_text,
            suppressed,
            plan.callbacks,
        )

    # --- the keywords ---------------------------------------------------------------------------

    def _act(
        self,
        conn: Connection,
        mo: Incoming,
        citizen: consent.Citizen,
        language: str,
        understood: dict,
        now: datetime,
    ) -> _Plan:
        request = mo.request
        intent = request.intent
        if intent is Intent.SUBSCRIBE:
            return self._subscribe(conn, mo, citizen, language, understood, now)
        if intent is Intent.UNSUBSCRIBE:
            return self._unsubscribe(conn, request, citizen, understood, now)
        if intent is Intent.HELP:
            return _Plan(HELP, understood, "reply.help")
        if intent is Intent.STATUS:
            return self._status(conn, request, citizen, understood)
        if intent in (Intent.CONFIRM, Intent.DECLINE):
            return self._answer(conn, intent is Intent.CONFIRM, citizen, understood, now)
        return _Plan(UNKNOWN, understood, "reply.help", always_reply=False)

    def _subscribe(
        self,
        conn: Connection,
        mo: Incoming,
        citizen: consent.Citizen,
        language: str,
        understood: dict,
        now: datetime,
    ) -> _Plan:
        request = mo.request
        understood.update(topic=request.topic, zones_written=list(request.zones))
        resolution = mo.zones or ZoneResolution()
        keyword = request.keyword or "ALTA"
        if resolution.unknown:
            understood["unknown"] = list(resolution.unknown)
            context = {"zone": resolution.unknown[0], "keyword": keyword, "suggestion": None, "example": None}
            near = self.policy.zones.suggest(resolution.unknown[0], limit=3)
            if near:
                understood["suggested"] = near
                words = [keyword, *([_ALL_WORD.get(language, "TODO")] if request.topic == "*" else [])]
                words += [request.topic] if request.topic not in (None, "*") else []
                context["suggestion"] = _choices(near, language)
                context["example"] = " ".join([*words, fold(near[0])])
            return _Plan(UNKNOWN_ZONE, understood, "reply.unknown_zone", context)
        if resolution.ambiguous:
            written, choices = resolution.ambiguous[0]
            understood["choices"] = [z.name for z in choices]
            question, example = self.question(written, choices, keyword, request.topic, language)
            return _Plan(
                AMBIGUOUS_ZONE, understood, "reply.ambiguous_zone", {"question": question, "example": example}
            )
        topics = list(TOPICS) if request.topic in (None, "*") else [request.topic]
        zones = list(resolution.zones)
        zone_ids = _zone_ids(conn, self.policy, zones) if zones else None
        understood["zones"] = [
            {"id": i, "name": z.name, "cp": z.cp} for i, z in zip(zone_ids or (), zones, strict=True)
        ]
        rows = []
        if citizen.opted_out and consent.opt_in(conn, citizen.id, now):
            citizen.opted_out = False
            rows.append({"action": consent.OPT_IN})
        added = sum(subscribe(conn, citizen.id, topic, zone_ids, now) for topic in topics)
        understood["added"] = added
        rows.append(
            {
                "action": consent.SUBSCRIBE,
                "topics": topics,
                "zones": [z.name for z in zones] if zones else None,
            }
        )
        context = {
            "topics": zones_label(topics, language),
            "all_topics": len(topics) == len(TOPICS),
            "topic": topics[0] if len(topics) == 1 else None,
            "zone_labels": resolution.labels,
        }
        return _Plan(SUBSCRIBED, understood, "reply.subscribed", context, rows)

    def question(
        self,
        written: str,
        choices: tuple[Zone, ...] | list[Zone],
        keyword: str,
        topic: str | None,
        language: str,
    ) -> tuple[str, str]:
        """("Polanco: ¿I, II, III, IV o V Sección?", "ALTA AGUA POLANCO 2") for a name that means
        several colonias: the choices, and a command that picks one."""
        lang = language if language in _OR else "es"
        words = [keyword]
        if topic:
            words.append(_ALL_WORD[lang] if topic == "*" else topic)
        bases = list(dict.fromkeys(z.display_base for z in choices))
        sections = sorted({z.section for z in choices if z.section is not None})
        if len(bases) == 1 and len(sections) == len(choices) and all(s < len(_ROMAN) for s in sections):
            labels = [_ROMAN[s] for s in sections]
            joined = f"{', '.join(labels[:-1])} {_OR[lang]} {labels[-1]}"
            question = f"{bases[0]}: ¿{joined} Sección?" if lang == "es" else f"{bases[0]}: {joined} Sección?"
            example = " ".join([*words, fold(bases[0]), str(sections[min(1, len(sections) - 1)])])
            return clip(question, QUESTION_MAX), example
        shown: list[str] = []
        for name in bases:
            if len(", ".join([*shown, name])) > QUESTION_MAX - 25:
                break
            shown.append(name)
        more = len(bases) > len(shown)
        if lang == "es":
            tail = f"{', '.join(shown)} u otra" if more else f"{', '.join(shown[:-1])} o {shown[-1]}"
            question = f"¿Cuál colonia: {tail}?" if len(shown) > 1 or more else f"¿{shown[0]}?"
        else:
            tail = f"{', '.join(shown)} or another" if more else f"{', '.join(shown[:-1])} or {shown[-1]}"
            question = f"Which colonia: {tail}?" if len(shown) > 1 or more else f"{shown[0]}?"
        example = " ".join([*words, choices[0].cp])
        return clip(question, QUESTION_MAX), example

    def _unsubscribe(
        self, conn: Connection, request: Request, citizen: consent.Citizen, understood: dict, now: datetime
    ) -> _Plan:
        understood["topic"] = request.topic
        if request.topic not in (None, "*"):
            removed = unsubscribe(conn, citizen.id, request.topic)
            understood["removed"] = removed
            row = {"action": consent.UNSUBSCRIBE, "topics": [request.topic]}
            return _Plan(UNSUBSCRIBED, understood, "reply.unsubscribed", {"topic": request.topic}, [row])
        result = consent.opt_out(conn, citizen, now, self.status_hook)
        understood.update(
            removed=result.subscriptions_removed,
            cancelled=len(result.cancelled),
            already_opted_out=result.was_opted_out,
        )
        row = {"action": consent.OPT_OUT, "topics": result.topics_removed or None}
        return _Plan(
            OPTED_OUT, understood, "reply.opted_out", {}, [row], callbacks=1 if result.cancelled else 0
        )

    def _status(
        self, conn: Connection, request: Request, citizen: consent.Citizen, understood: dict
    ) -> _Plan:
        understood["folio"] = request.folio
        if not request.folio:
            return _Plan(STATUS_USAGE, understood, "reply.status_usage")
        wanted = _norm_folio(request.folio)
        # only this number's own cases are looked at: another number's folio and an unknown one
        # give the same answer, and the same work
        owned = conn.execute(
            select(
                cases.c.id,
                cases.c.folio,
                cases.c.category,
                cases.c.status,
                cases.c.progress,
                cases.c.resolved_on,
                cases.c.closed_at,
            ).where(cases.c.citizen_id == citizen.id)
        ).all()
        case = next((c for c in owned if _norm_folio(c.folio) == wanted), None)
        if case is None:
            return _Plan(NOT_FOUND, understood, "reply.not_found")
        appointment = conn.execute(
            select(appointments_table.c.at, appointments_table.c.place).where(
                appointments_table.c.case_id == case.id,
                appointments_table.c.status.in_(appointments.ACTIVE),
            )
        ).first()
        understood["case_id"] = case.id
        context = {
            "folio": case.folio,
            "category": case.category,
            "status": case.status,
            "progress": case.progress,
            "resolved_on": case.resolved_on,
            "closed": case.closed_at is not None,
            "appointment_at": appointment.at if appointment else None,
            "place": appointment.place if appointment else None,
        }
        return _Plan(STATUS, understood, "reply.status", context)

    def _answer(
        self, conn: Connection, confirmed: bool, citizen: consent.Citizen, understood: dict, now: datetime
    ) -> _Plan:
        calls = []

        def hook(c: Connection, appointment: dict) -> None:
            if self.callbacks is not None:
                self.callbacks.appointment_answered(c, appointment)
                calls.append(appointment["id"])

        answered = appointments.record_answer(conn, citizen.id, confirmed, now, hook)
        if answered is None:
            return _Plan(NOTHING_PENDING, understood, "reply.help")
        understood.update(appointment_id=answered["id"], folio=answered["folio"], answer=answered["status"])
        context = {"folio": answered["folio"], "appointment_at": answered["at"], "place": answered["place"]}
        if confirmed:
            return _Plan(CONFIRMED, understood, "reply.confirmed", context, callbacks=len(calls))
        return _Plan(DECLINED, understood, "reply.declined", context, callbacks=len(calls))


def _choices(names: list[str], language: str) -> str:
    """["Tacuba", "Tacubaya"] -> "Tacuba o Tacubaya" (clipped for a reply)."""
    word = _OR.get(language, "o")
    joined = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"
    return clip(joined, SUGGESTION_MAX)


def _zone_ids(conn: Connection, policy: NoticePolicy, zones: list[Zone]) -> list[int]:
    """Database ids of catalogue zones (synced at start-up; synced here when it was not)."""
    try:
        return ids_of(conn, zones)
    except LookupError:
        from gateway.store.zones import sync_zones

        sync_zones(conn, policy.zones, clock.utcnow())
        return ids_of(conn, zones)


def mo_counts(conn: Connection, msisdn: str, since: datetime) -> dict[str, int]:
    """Outcomes of a number's MOs since ``since`` (tests, diagnostics)."""
    m = mobile_messages.c
    rows = conn.execute(
        select(m.outcome, func.count())
        .where(and_(m.msisdn == msisdn, m.received_at >= since))
        .group_by(m.outcome)
    ).all()
    return dict(rows)
