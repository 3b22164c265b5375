"""Citizens' SMS to the short code (``mobile_messages``): each MO, what it was understood as, and
the reply it got. The loop guard counts these rows, so several processes agree."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from .models import mobile_messages

_m = mobile_messages.c


def record(
    conn: Connection,
    *,
    msisdn: str,
    citizen_id: int | None,
    carrier: str | None,
    text: str,
    received_at: datetime,
    keyword: str | None,
    intent: str,
    language: str | None,
    understood: dict,
    outcome: str,
    reply_message_id: int | None = None,
    reply_kind: str | None = None,
) -> int:
    """Store one MO; returns its id."""
    return conn.execute(
        insert(mobile_messages)
        .values(
            msisdn=msisdn[:32],
            citizen_id=citizen_id,
            carrier=carrier,
            text=text,
            received_at=received_at,
            keyword=keyword and keyword[:16],
            intent=intent,
            language=language,
            understood=understood,
            outcome=outcome,
            reply_message_id=reply_message_id,
            reply_kind=reply_kind,
        )
        .returning(_m.id)
    ).scalar_one()


def complete(
    conn: Connection,
    mo_id: int,
    *,
    understood: dict,
    outcome: str,
    reply_message_id: int | None,
    reply_kind: str | None,
) -> None:
    """What a stored MO did, once it was acted on."""
    conn.execute(
        update(mobile_messages)
        .where(_m.id == mo_id)
        .values(
            understood=understood,
            outcome=outcome,
            reply_message_id=reply_message_id,
            reply_kind=reply_kind,
        )
    )


def latest_text(
    conn: Connection, msisdn: str, since: datetime, until: datetime, other_than: str
) -> str | None:
    """The text of the number's latest MO between ``since`` and ``until`` whose outcome is not
    ``other_than``."""
    row = conn.execute(
        select(_m.text)
        .where(
            _m.msisdn == msisdn,
            _m.received_at >= since,
            _m.received_at <= until,
            _m.outcome != other_than,
        )
        .order_by(_m.received_at.desc(), _m.id.desc())
        .limit(1)
    ).first()
    return None if row is None else row.text


def answered_since(conn: Connection, msisdn: str, since: datetime, intent: str) -> bool:
    """Whether an MO of ``intent`` from this number after ``since`` got a reply."""
    row = conn.execute(
        select(_m.id)
        .where(
            _m.msisdn == msisdn,
            _m.received_at > since,
            _m.intent == intent,
            _m.reply_message_id.is_not(None),
        )
        .limit(1)
    ).first()
    return row is not None


def replies_since(conn: Connection, msisdn: str, since: datetime) -> int:
    """Replies sent to this number's MOs received after ``since``."""
    return conn.execute(
        select(func.count())
        .select_from(mobile_messages)
        .where(_m.msisdn == msisdn, _m.received_at > since, _m.reply_message_id.is_not(None))
    ).scalar_one()


def outcome_counts(conn: Connection, msisdn: str, since: datetime) -> dict[str, int]:
    """Outcomes of a number's MOs since ``since`` (diagnostics, tests)."""
    rows = conn.execute(
        select(_m.outcome, func.count())
        .where(_m.msisdn == msisdn, _m.received_at >= since)
        .group_by(_m.outcome)
    ).all()
    return dict(rows)
