"""A citizen's rights over their data (access and cancellation; reference.md section 5.5).

``smsgw citizens export <number>`` shows everything the gateway holds about a number: the citizen,
their subscriptions, the consent ledger, their cases and appointments, every message sent to them
with its text, and every SMS they sent.

``smsgw citizens forget <number>`` erases the personal data but keeps the block: the citizen row
stays, with its number, opted out, and a ``forgotten`` consent event, so the number is never
messaged again (not by a broadcast, not by a CRM event, not by an import; only an explicit ALTA /
START from that phone subscribes it again). Erased: the name; the texts of the SMS they sent and of
the messages sent to them ("[erased]"); the raw texts and zones of consent events; their
subscriptions; the gateway's copy of their cases and appointments; the CRM events about them
(payload replaced). Kept, and why: the number (the block), message rows without their text
(delivery statistics, billing reconciliation with the carriers), the consent events without raw
text or zones (proof of when consent was given and withdrawn), and what the SMS were understood
as, reduced to the keyword and outcome.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Text, cast, delete, or_, select, update

from gateway import clock
from gateway.domain.dates import iso_utc

from . import consent
from .models import (
    appointments,
    cases,
    citizens,
    consent_events,
    crm_phone_numbers,
    crm_tracked_requests,
    events,
    messages,
    mo_parts,
    mobile_messages,
)
from .subscriptions import subscriptions_of

ERASED = "[erased]"
KEPT = {
    "citizen": "the number, opted out, so it is never messaged again (the block the law asks for)",
    "consent_events": "times, channels and actions, without raw text or zones: proof of consent and of "
    "its withdrawal",
    "message_rows": "status, carrier and times, without the text: delivery statistics, carrier billing",
    "sms_received_rows": "keyword and outcome, without the text: the reply counters and the audit",
}


def _iso(value):
    if isinstance(value, datetime):
        return iso_utc(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _clean(row) -> dict:
    return {k: _iso(v) for k, v in dict(row).items()}


def export(conn: Connection, msisdn: str) -> dict | None:
    """Everything held about ``msisdn`` (E.164), or None when the gateway has nothing."""
    citizen = conn.execute(select(citizens).where(citizens.c.msisdn == msisdn)).mappings().first()
    mos = conn.execute(
        select(mobile_messages).where(mobile_messages.c.msisdn == msisdn).order_by(mobile_messages.c.id)
    ).mappings()
    mos = [_clean(r) for r in mos]
    sent = conn.execute(
        select(
            messages.c.id,
            messages.c.body,
            messages.c.language,
            messages.c.status,
            messages.c.priority,
            messages.c.carrier,
            messages.c.created_at,
            messages.c.submitted_at,
            messages.c.done_at,
            messages.c.event_id,
            messages.c.broadcast_id,
        )
        .where(messages.c.msisdn == msisdn)
        .order_by(messages.c.id)
    ).mappings()
    sent = [_clean(r) for r in sent]
    if citizen is None and not mos and not sent:
        return None
    out: dict = {"msisdn": msisdn, "exported_at": _iso(clock.utcnow())}
    out["citizen"] = _clean(citizen) if citizen else None
    if citizen is not None:
        cid = citizen["id"]
        out["subscriptions"] = [
            {"topic": s["topic"], "zone": s["zone"] or "(every zone)", "cp": s["cp"]}
            for s in subscriptions_of(conn, cid)
        ]
        out["consent_events"] = [_clean(e) for e in consent.events_of(conn, cid)]
        out["cases"] = [
            _clean(r)
            for r in conn.execute(
                select(cases).where(cases.c.citizen_id == cid).order_by(cases.c.id)
            ).mappings()
        ]
        out["appointments"] = [
            _clean(r)
            for r in conn.execute(
                select(appointments).where(appointments.c.citizen_id == cid).order_by(appointments.c.id)
            ).mappings()
        ]
    else:
        out.update(subscriptions=[], consent_events=[], cases=[], appointments=[])
    out["messages_sent"] = sent
    out["messages_received"] = mos
    out["crm_phone_directory"] = [
        {"client_id": r.client_id, "key": r.key, "updated_at": _iso(r.updated_at)}
        for r in conn.execute(
            select(crm_phone_numbers.c.client_id, crm_phone_numbers.c.key, crm_phone_numbers.c.updated_at)
            .where(crm_phone_numbers.c.msisdn == msisdn)
            .order_by(crm_phone_numbers.c.id)
        )
    ]
    return out


def forget(conn: Connection, msisdn: str, now: datetime, status_hook=None) -> dict:
    """Erase ``msisdn``'s personal data, keep the block. Returns what was erased and kept."""
    citizen = consent.lock_citizen(conn, msisdn, "es", now)
    cid = citizen.id
    stopped = consent.opt_out(conn, citizen, now, status_hook)  # subscriptions, waiting messages
    had_name = citizen.name is not None
    conn.execute(update(citizens).where(citizens.c.id == cid).values(name=None, updated_at=now))
    case_rows = conn.execute(select(cases.c.id, cases.c.folio).where(cases.c.citizen_id == cid)).all()
    case_ids = [r.id for r in case_rows]
    folios = [r.folio for r in case_rows]
    # the CRM events about them: those that sent them a message (not broadcasts: those are not
    # about one citizen), those of their appointments, and any naming one of their folios
    event_ids = set(
        conn.execute(
            select(messages.c.event_id).where(
                messages.c.msisdn == msisdn,
                messages.c.event_id.is_not(None),
                messages.c.broadcast_id.is_(None),
            )
        ).scalars()
    )
    event_ids |= set(
        conn.execute(select(appointments.c.event_id).where(appointments.c.citizen_id == cid)).scalars()
    )
    if folios:
        payload = cast(events.c.payload, Text)
        for chunk in _chunks(folios, 50):
            event_ids |= set(
                conn.execute(
                    select(events.c.id).where(
                        or_(*(payload.contains(f'"{f}"', autoescape=True) for f in chunk))
                    )
                ).scalars()
            )
    for chunk in _chunks(sorted(event_ids)):
        conn.execute(
            update(events).where(events.c.id.in_(chunk)).values(payload={"erased": True, "at": _iso(now)})
        )
    appointments_removed = conn.execute(delete(appointments).where(appointments.c.citizen_id == cid)).rowcount
    cases_removed = conn.execute(delete(cases).where(cases.c.citizen_id == cid)).rowcount if case_ids else 0
    for chunk in _chunks(folios):  # the CRM adapters' copies of those requests, and the number
        conn.execute(delete(crm_tracked_requests).where(crm_tracked_requests.c.folio.in_(chunk)))
    directory = conn.execute(delete(crm_phone_numbers).where(crm_phone_numbers.c.msisdn == msisdn)).rowcount
    # parts of a long SMS still waiting for the rest (the SMSC's address form: the last 10 digits)
    conn.execute(delete(mo_parts).where(mo_parts.c.sender.endswith(msisdn[-10:], autoescape=True)))
    bodies = conn.execute(
        update(messages).where(messages.c.msisdn == msisdn, messages.c.body != ERASED).values(body=ERASED)
    ).rowcount
    mo_texts = conn.execute(
        update(mobile_messages)
        .where(mobile_messages.c.msisdn == msisdn, mobile_messages.c.text != ERASED)
        .values(text=ERASED, understood={"erased": True})
    ).rowcount
    ledger = conn.execute(
        update(consent_events)
        .where(
            consent_events.c.citizen_id == cid,
            consent_events.c.raw.is_not(None),
            consent_events.c.raw != ERASED,
        )
        .values(raw=ERASED)
    ).rowcount
    conn.execute(update(consent_events).where(consent_events.c.citizen_id == cid).values(zones=None))
    if not stopped.was_opted_out:
        consent.record(conn, cid, consent.OPT_OUT, consent.CLI, now, topics=stopped.topics_removed or None)
    consent.record(conn, cid, consent.FORGOTTEN, consent.CLI, now)
    return {
        "msisdn": msisdn,
        "erased": {
            "name": had_name,
            "subscriptions": stopped.subscriptions_removed,
            "messages_cancelled": len(stopped.cancelled),
            "message_texts": bodies,
            "sms_received_texts": mo_texts,
            "consent_raw_texts": ledger,
            "cases": cases_removed,
            "appointments": appointments_removed,
            "crm_event_payloads": len(event_ids),
            "crm_phone_directory": directory,
        },
        "kept": KEPT,
        "already_opted_out": stopped.was_opted_out,
    }


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i : i + size]
