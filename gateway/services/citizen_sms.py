"""Citizens' SMS to the short code: what each keyword does, and the reply (docs/keywords.md).

Every citizen's message (MO), reassembled and decoded by the link (smpp_client/inbound.py), arrives at
:meth:`CitizenInbox.handle`. The keyword is parsed (gateway/domain/keywords.py) and the zones are
resolved before the database; then ONE transaction stores the MO (``mobile_messages``), acts
(subscriptions and opt-out through the subscription service, which records the consent ledger;
the appointment's answer and its CRM callback), queues the reply and records what the MO was
understood as. If anything fails before the commit the handler raises and the SMSC sends the MO
again; nothing was half-applied.

Decisions:

- **Replies** are ordinary outbox messages at HIGH priority, with the HIGH validity, sent at once
  even in quiet hours (a citizen who just wrote expects the answer), in the keyword's language
  (START / STOP / HELP / YES / STATUS: English; ALTA, BAJA, ...: Spanish; INFO, NO and anything
  else: the citizen's stored language). A new citizen's language is the keyword's. Their texts
  and the start-up check of their templates: gateway/services/reply_texts.py.
- **Loop guard** (gateway/services/loop_guard.py): resends do nothing; texts that look like an
  auto-reply get no answer and do nothing (except an opt-out keyword, which is honoured silently);
  the help text for texts not understood at most once an hour; at most ``max_per_day`` replies.
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
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection

from config.settings import RepliesSettings
from gateway import clock
from gateway.domain.catalog import TOPICS
from gateway.domain.composer import zones_label
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
from gateway.domain.status import Priority
from gateway.domain.subscriptions import every_topic_unless
from gateway.store import appointments, consent, mobile_messages, outbox
from gateway.store.citizens import cases_of
from gateway.store.db import Database

from .loop_guard import DUPLICATE, LoopGuard
from .reply_texts import ReplyTexts, all_word
from .subscriptions import Origin, SubscriptionService

if TYPE_CHECKING:
    from crm_adapters.callbacks import CallbackQueue

log = structlog.get_logger("replies")

_E164_MX = re.compile(r"^\+52\d{10}$")


# --- outcomes (mobile_messages.outcome) -------------------------------------------------------------

SUBSCRIBED, AMBIGUOUS_ZONE, UNKNOWN_ZONE = "subscribed", "ambiguous_zone", "unknown_zone"
UNSUBSCRIBED, OPTED_OUT, HELP = "unsubscribed", "opted_out", "help"
STATUS, NOT_FOUND, STATUS_USAGE = "status", "status_not_found", "status_usage"
CONFIRMED, DECLINED, NOTHING_PENDING = "confirmed", "declined", "nothing_pending"
UNKNOWN, AUTO_REPLY, NOT_A_MOBILE = "unknown", "auto_reply", "not_a_mobile"
RECEIVED = "received"  # stored, being acted on (never committed as such)


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
        subscriptions: SubscriptionService,
        settings: RepliesSettings | None = None,
        *,
        max_segments: int = 3,
        on_queued: Callable[[], None] = lambda: None,
        callbacks: CallbackQueue | None = None,
        on_callbacks: Callable[[], None] = lambda: None,
    ):
        self.db = db
        self.policy = policy
        self.subscriptions = subscriptions
        settings = settings or RepliesSettings()
        self.texts = ReplyTexts(policy.composer, settings, max_segments)
        self.guard = LoopGuard(settings)
        self.on_queued = on_queued  # a reply queued: wake the dispatcher
        self.callbacks = callbacks  # what the CRMs are told of a citizen's SI / NO
        self.on_callbacks = on_callbacks  # callbacks queued (SI / NO, messages an opt-out cancelled)
        self.handled: dict[str, int] = {}  # outcome -> count, for /metrics and tests

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
            return Handled(self._record(conn, mo, None, None, NOT_A_MOBILE, understood), NOT_A_MOBILE)
        language_if_new = request.language if request.explicit_language else "es"
        citizen = self.subscriptions.citizen(conn, mo.msisdn, language_if_new, now)  # one at a time
        if self.guard.is_resend(conn, mo.msisdn, mo.text, mo.received_at):
            return Handled(self._record(conn, mo, citizen, None, DUPLICATE, understood), DUPLICATE)
        language = request.language if request.explicit_language else citizen.language
        auto = looks_like_auto_reply(mo.text)
        if auto and request.intent is not Intent.UNSUBSCRIBE:  # another machine: not acted on
            understood["reply"] = AUTO_REPLY
            mo_id = self._record(conn, mo, citizen, language, AUTO_REPLY, understood)
            return Handled(mo_id, AUTO_REPLY, suppressed=AUTO_REPLY)
        mo_id = self._record(conn, mo, citizen, language, RECEIVED, understood)
        origin = Origin(consent.SMS, mo.text, carrier=mo.carrier, mobile_message_id=mo_id)
        plan = self._act(conn, mo, citizen, language, understood, origin, now)
        suppressed = None
        if auto:
            suppressed, plan.reply = AUTO_REPLY, None
        elif plan.reply is not None:
            suppressed = self.guard.suppressed(
                conn, mo.msisdn, mo.received_at, opted_out=citizen.opted_out, help_text=not plan.always_reply
            )
            if suppressed:
                plan.reply = None
        if suppressed:
            plan.understood["reply"] = suppressed
        reply_id, reply_text = None, None
        if plan.reply is not None:
            reply_id, reply_text = self._reply(conn, mo, citizen, plan, language, now)
        reply_kind = plan.reply if reply_id else None
        mobile_messages.complete(
            conn,
            mo_id,
            understood=plan.understood,
            outcome=plan.outcome,
            reply_message_id=reply_id,
            reply_kind=reply_kind,
        )
        return Handled(mo_id, plan.outcome, reply_kind, reply_id, reply_text, suppressed, plan.callbacks)

    def _record(
        self,
        conn: Connection,
        mo: Incoming,
        citizen: consent.Citizen | None,
        language: str | None,
        outcome: str,
        understood: dict,
    ) -> int:
        request, citizen_id = mo.request, citizen.id if citizen else None
        return mobile_messages.record(
            conn, msisdn=mo.msisdn, citizen_id=citizen_id, carrier=mo.carrier, text=mo.text,
            received_at=mo.received_at, keyword=request.keyword or None, intent=request.intent.value,
            language=language, understood=understood, outcome=outcome,
        )  # fmt: skip

    def _reply(
        self,
        conn: Connection,
        mo: Incoming,
        citizen: consent.Citizen,
        plan: _Plan,
        language: str,
        now: datetime,
    ) -> tuple[int, str]:
        text = self.texts.render(plan.reply, language, plan.context)
        (reply_id,) = outbox.enqueue(
            conn,
            [
                {
                    "citizen_id": citizen.id,
                    "msisdn": mo.msisdn,
                    "language": language,
                    "body": text.body,
                    "encoding": text.encoding,
                    "segments": text.segments,
                    "priority": int(Priority.HIGH),
                    "expires_at": now + self.policy.validity.validity(Priority.HIGH),
                }
            ],
            now,
        )
        return reply_id, text.body

    # --- the keywords ---------------------------------------------------------------------------

    def _act(
        self,
        conn: Connection,
        mo: Incoming,
        citizen: consent.Citizen,
        language: str,
        understood: dict,
        origin: Origin,
        now: datetime,
    ) -> _Plan:
        request = mo.request
        intent = request.intent
        if intent is Intent.SUBSCRIBE:
            return self._subscribe(conn, mo, citizen, language, understood, origin, now)
        if intent is Intent.UNSUBSCRIBE:
            return self._unsubscribe(conn, request, citizen, understood, origin, now)
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
        origin: Origin,
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
                words = [keyword, *([all_word(language)] if request.topic == "*" else [])]
                words += [request.topic] if request.topic not in (None, "*") else []
                context["suggestion"] = self.texts.choices(near, language)
                context["example"] = " ".join([*words, fold(near[0])])
            return _Plan(UNKNOWN_ZONE, understood, "reply.unknown_zone", context)
        if resolution.ambiguous:
            written, choices = resolution.ambiguous[0]
            understood["choices"] = [z.name for z in choices]
            question, example = self.texts.question(written, choices, keyword, request.topic, language)
            return _Plan(
                AMBIGUOUS_ZONE, understood, "reply.ambiguous_zone", {"question": question, "example": example}
            )
        topics = every_topic_unless(request.topic)
        zones = list(resolution.zones)
        done = self.subscriptions.subscribe(conn, citizen, topics, zones, origin, now, explicit=True)
        understood["zones"] = [
            {"id": i, "name": z.name, "cp": z.cp} for i, z in zip(done.zone_ids, zones, strict=True)
        ]
        understood["added"] = done.added
        context = {
            "topics": zones_label(list(topics), language),
            "all_topics": len(topics) == len(TOPICS),
            "topic": topics[0] if len(topics) == 1 else None,
            "zone_labels": resolution.labels,
        }
        return _Plan(SUBSCRIBED, understood, "reply.subscribed", context)

    def _unsubscribe(
        self,
        conn: Connection,
        request: Request,
        citizen: consent.Citizen,
        understood: dict,
        origin: Origin,
        now: datetime,
    ) -> _Plan:
        understood["topic"] = request.topic
        if request.topic not in (None, "*"):
            understood["removed"] = self.subscriptions.unsubscribe(conn, citizen, request.topic, origin, now)
            return _Plan(UNSUBSCRIBED, understood, "reply.unsubscribed", {"topic": request.topic})
        result = self.subscriptions.opt_out(conn, citizen, origin, now)
        understood.update(
            removed=result.subscriptions_removed,
            cancelled=len(result.cancelled),
            already_opted_out=result.was_opted_out,
        )
        return _Plan(OPTED_OUT, understood, "reply.opted_out", callbacks=1 if result.cancelled else 0)

    def _status(
        self, conn: Connection, request: Request, citizen: consent.Citizen, understood: dict
    ) -> _Plan:
        understood["folio"] = request.folio
        if not request.folio:
            return _Plan(STATUS_USAGE, understood, "reply.status_usage")
        wanted = _norm_folio(request.folio)
        # only this number's own cases are looked at: another number's folio and an unknown one
        # give the same answer, and the same work
        case = next((c for c in cases_of(conn, citizen.id) if _norm_folio(c.folio) == wanted), None)
        if case is None:
            return _Plan(NOT_FOUND, understood, "reply.not_found")
        appointment = appointments.active_for_case(conn, case.id)
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
