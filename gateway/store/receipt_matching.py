"""Receipts to the part they belong to and no other, rolled up to their messages, set-based.

A receipt's candidates are the parts of its carrier that are not final yet (status 'submitted'),
the most recently submitted first: an SMSC that restarts its counter reuses ids, and the parts
those ids named before are final by then. The id is looked up in the form the carrier's relation
gives (:mod:`smpp_client.message_ids`): as written when the carrier writes both ids alike, after
conversion when it is known to write them in different bases (the link converts it when it knows
the relation on arrival: ``submit_id``; a receipt held while the relation was learned is converted
here once it is known). While a carrier's relation is not
known (``auto``, not learned yet) every form is looked up; a receipt that finds open parts in two
forms is *ambiguous* and matches nothing (the status writer holds it, like a receipt that overtook
its submit result, until the relation is learned), and one that finds them in one form only is
matched and carries that form's relation as ``evidence``.

A batch costs a handful of statements whatever its size: one lookup of the open parts (every form
at once, through the partial index), one executemany for the parts, one aggregate for the messages
sent in several parts, one executemany for the messages whose status changes and one for their
history; receipts on their last try that matched nothing add one lookup of final parts, to tell a
duplicate from an unknown id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from operator import itemgetter

from sqlalchemy import Connection, select

from gateway.domain.status import MessageStatus
from smpp_client.message_ids import Relation, candidate_forms, submitted_form

from . import driver
from .models import message_parts
from .outbox import _FINAL_VALUES, ReceiptUpdate, _chunks, _history

_FAILED_PART = frozenset(
    {MessageStatus.UNDELIVERABLE, MessageStatus.EXPIRED, MessageStatus.REJECTED, MessageStatus.FAILED}
)
_SUBMITTED_AT_AND_ID = itemgetter(4, 0)  # of a looked-up row
_PART_DONE = driver.Batch(
    "UPDATE message_parts SET status = ?, error_code = ?, done_at = ? WHERE id = ?",
    "UPDATE message_parts SET status = v.status, error_code = v.code, done_at = v.at"
    " FROM unnest(?::text[], ?::text[], ?::timestamp[], ?::int[]) AS v(status, code, at, id)"
    " WHERE message_parts.id = v.id",
)
_NOT_FINAL = f"NOT IN ({', '.join(repr(v) for v in _FINAL_VALUES)})"
_MESSAGE_DONE = driver.Batch(
    f"UPDATE messages SET status = ?1, updated_at = ?2, done_at = ?2, error_text = ?3 WHERE id = ?4"
    f" AND status {_NOT_FINAL}",
    "UPDATE messages SET status = v.status, updated_at = v.at, done_at = v.at, error_text = v.error"
    " FROM unnest(?::text[], ?::timestamp[], ?::text[], ?::int[]) AS v(status, at, error, id)"
    f" WHERE messages.id = v.id AND messages.status {_NOT_FINAL}",
)


def _forms(r: ReceiptUpdate, relations: Mapping[str, Relation]) -> dict[Relation, str]:
    relation = relations.get(r.carrier, Relation.AUTO)
    if r.submit_id is not None:  # the link already brought it to the submit id's form
        return {relation: r.submit_id}
    if relation is Relation.AUTO:
        return candidate_forms(r.smsc_id)
    form = submitted_form(r.smsc_id, relation)
    return {relation: form} if form is not None else {}


def apply_receipts(
    conn: Connection, items: Iterable[ReceiptUpdate], relations: Mapping[str, Relation] | None = None
) -> list[ReceiptUpdate]:
    """Record part receipts and roll them up to their messages; returns those matching no open part.

    ``relations`` maps a carrier to how it writes receipt ids (absent: AUTO). Each receipt's
    outcome is set on it (``matched``, ``message_id``, ``message_status``, ``latency``,
    ``evidence``; unmatched: ``ambiguous``, ``final_only``), afresh on every call.
    """
    items = list(items)
    if not items:
        return []
    relations = relations or {}
    wanted: list[dict[Relation, str]] = []
    for r in items:
        r.matched = r.ambiguous = r.final_only = False
        r.message_id = r.message_status = r.latency = r.evidence = None
        wanted.append(_forms(r, relations))
    keys = sorted({form for forms in wanted for form in forms.values()})
    carriers = sorted({r.carrier for r in items})
    open_parts: dict[tuple[str, str], list] = {}
    from_db = driver.datetime_from_db(conn)
    for chunk in driver.chunks(keys):
        where, params = driver.in_list(conn, "p.smsc_message_id", chunk)
        carrier_in, carrier_params = driver.in_list(conn, "p.carrier", carriers)
        sql = (
            "SELECT p.id, p.message_id, p.carrier, p.smsc_message_id, p.submitted_at, m.status, m.segments"
            f" FROM message_parts p JOIN messages m ON m.id = p.message_id WHERE {where} AND {carrier_in}"
            " AND p.status = 'submitted'"  # a literal, so SQLite can use the partial index
        )
        for row in driver.run(conn, sql, params + carrier_params):
            open_parts.setdefault((row[2], row[3]), []).append(row)
    for found in open_parts.values():
        if len(found) > 1:  # an id used again (a counter that restarted): the most recent first
            found.sort(key=_SUBMITTED_AT_AND_ID, reverse=True)
    unmatched: list[ReceiptUpdate] = []
    last_tries: list[tuple[ReceiptUpdate, dict[Relation, str]]] = []
    part_rows: list[tuple] = []
    to_db = driver.datetime_to_db(conn)
    message_status: dict[int, str] = {}  # current status, as this batch changes it
    single: list[tuple[ReceiptUpdate, int]] = []
    multi: dict[int, list[ReceiptUpdate]] = {}
    for r, forms in zip(items, wanted, strict=True):
        carrier = r.carrier
        if len(forms) == 1:  # the carrier's relation is known (or the id reads one way only)
            (key,) = forms.values()
            found = open_parts.get((carrier, key))
        else:
            hits = {form for form in forms.values() if open_parts.get((carrier, form))}
            if len(hits) > 1:
                r.ambiguous = True
                unmatched.append(r)
                continue
            key = hits.pop() if hits else None
            found = open_parts.get((carrier, key)) if key is not None else None
            if found and len(set(forms.values())) > 1:  # other forms were possible, found nothing
                givers = [relation for relation, form in forms.items() if form == key]
                r.evidence = givers[0] if len(givers) == 1 else None
        if not found:
            unmatched.append(r)
            if r.last_try:
                last_tries.append((r, forms))
            continue
        part_id, mid, _, _, submitted_at, status, segments = found.pop(0)
        r.matched = True
        r.message_id = mid
        r.latency = (r.at - from_db(submitted_at)).total_seconds()
        part_rows.append((r.part_status.value, r.error_code, to_db(r.at), part_id))
        message_status.setdefault(mid, status)
        if segments == 1:
            single.append((r, mid))
        else:
            multi.setdefault(mid, []).append(r)
    driver.run_batch(conn, _PART_DONE, part_rows)
    if last_tries:
        _mark_final_only(conn, last_tries)
    changes: list[tuple[int, MessageStatus, str | None, datetime, ReceiptUpdate]] = []

    def decide(mid: int, new: MessageStatus, r: ReceiptUpdate) -> None:
        if message_status[mid] in _FINAL_VALUES:
            return
        message_status[mid] = new.value
        error = None if new == MessageStatus.DELIVERED else f"receipt err:{r.error_code}"
        r.message_status = new
        changes.append((mid, new, error, r.at, r))

    for r, mid in single:
        decide(mid, r.part_status, r)
    if multi:
        part_statuses: dict[int, list[str]] = {}
        for chunk in driver.chunks(list(multi)):
            where, params = driver.in_list(conn, "message_id", chunk)
            for mid, st in driver.run(
                conn, f"SELECT message_id, status FROM message_parts WHERE {where}", params
            ):
                part_statuses.setdefault(mid, []).append(st)
        for mid, receipts in multi.items():
            failing = next((r for r in receipts if r.part_status in _FAILED_PART), None)
            if failing is not None:  # failed or expired as soon as one part is
                decide(mid, failing.part_status, failing)
            elif all(st == MessageStatus.DELIVERED.value for st in part_statuses.get(mid, ())):
                decide(mid, MessageStatus.DELIVERED, receipts[-1])
    if changes:
        rows = []
        for mid, st, err, at, _ in changes:
            stamp = to_db(at)
            rows.append((st.value, stamp, err, mid))
        driver.run_batch(conn, _MESSAGE_DONE, rows)
        _history(conn, [(mid, st, err, at) for mid, st, err, at, _ in changes])
    return unmatched


def _mark_final_only(conn: Connection, receipts: list[tuple[ReceiptUpdate, dict[Relation, str]]]) -> None:
    """Which of these unmatched receipts name only parts that are final already (duplicates)."""
    p = message_parts.c
    keys = sorted({form for _, forms in receipts for form in forms.values()})
    carriers = sorted({r.carrier for r, _ in receipts})
    known: set[tuple[str, str]] = set()
    for chunk in _chunks(keys):
        known.update(
            (carrier, key)
            for carrier, key in conn.execute(
                select(p.carrier, p.smsc_message_id)
                .where(p.smsc_message_id.in_(chunk), p.carrier.in_(carriers))
                .distinct()
            )
        )
    for r, forms in receipts:
        r.final_only = any((r.carrier, form) in known for form in forms.values())
