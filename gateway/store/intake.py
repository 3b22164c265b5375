"""Accepting events: one transaction records them, plans their messages and queues them.

Idempotent on (client, event id): a repeated post, also a concurrent one, finds the first row
(INSERT … ON CONFLICT DO NOTHING waits for a concurrent inserter on PostgreSQL) and answers with
the response stored by the first when its payload is the first one's (compared decoded, so
whitespace and key order do not matter); another payload under the same id is a conflict. A case
event whose citizen opted out is accepted and recorded with no message; its answer says so:
``"skipped": [{"msisdn": "+52******5678", "reason": "opted_out"}]`` (the number masked).

Requests arriving together are accepted together (:class:`IntakeBatcher`): while one batch is in
the database thread the next ones gather, and a batch costs a handful of statements (executemany
for events, citizens, cases, messages and history) and one commit whatever its size. This group
commit is what lets SQLite take thousands of events a second. The batcher, the case events' and the
broadcasts' inserts stay in one module (over 400 lines): they share one transaction and its rows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Connection, bindparam, func, select, update

from gateway.domain.composer import Composer
from gateway.domain.events import Event
from gateway.domain.notices import NoticePolicy, Prepared
from gateway.domain.phone import mask_msisdn
from gateway.domain.timing import to_naive_utc

from . import appointments, broadcasts, outbox
from .db import Database, insert_ignoring_conflicts
from .models import cases, citizens, events, subscriptions
from .signatures import Seen, register_new
from .zones import ids_for

log = structlog.get_logger("store")

SKIPPED_OPTED_OUT = "opted_out"  # a case event's citizen who opted out: no message, said in "skipped"


@dataclass(slots=True)
class Accepted:
    response: dict
    created: bool
    broadcast_id: int | None = None
    conflict: bool = False  # the id was first used with another payload: nothing done
    replay: bool = False  # the request's signature was seen before: nothing done

    @property
    def queued(self) -> bool:
        return self.created and bool(self.response.get("message_ids") or self.broadcast_id)


@dataclass(slots=True)
class _Citizen:
    id: int
    opted_out: bool
    language: str
    name: str | None
    dirty: bool = False


def stored_event(conn: Connection, client_id: str, event_id: str) -> tuple[dict, dict | None] | None:
    """The payload and first answer stored under a client's event id, if any."""
    row = conn.execute(
        select(events.c.payload, events.c.response).where(
            events.c.client_id == client_id, events.c.event_key == event_id
        )
    ).first()
    return (row.payload, row.response) if row is not None else None


def same_payload(stored: object, payload: object) -> bool:
    """Equal as JSON values (``true`` is not ``1``, ``1`` is not ``1.0``; key order is irrelevant).
    A payload erased by ``smsgw citizens forget`` matches any repeat: the first answer stands."""
    if isinstance(stored, dict) and stored.get("erased") is True:
        return True

    def canonical(value: object) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    return stored == payload and canonical(stored) == canonical(payload)


def _local_date(moment: datetime, policy: NoticePolicy):
    return moment.replace(tzinfo=UTC).astimezone(policy.composer.renderer.tz).date()


def accept_events(
    conn: Connection, items: list[Prepared], policy: NoticePolicy, now: datetime
) -> list[Accepted]:
    """Accept a batch in one transaction; one Accepted per item, in order."""
    results: dict[tuple[str, str], Accepted] = {}
    first: dict[tuple[str, str], Prepared] = {}
    for item in items:
        first.setdefault(item.key, item)
    ordered = sorted(first.values(), key=lambda p: p.key)  # one lock order for concurrent batches
    inserted = (
        conn.execute(
            insert_ignoring_conflicts(conn, events, ["client_id", "event_key"]).returning(
                events.c.id, events.c.client_id, events.c.event_key
            ),
            [
                {
                    "client_id": p.client_id,
                    "event_key": p.event.id,
                    "type": p.event.type,
                    "payload": p.payload,
                    "received_at": now,
                }
                for p in ordered
            ],
        ).all()
        if len(ordered) > 1
        else _insert_one(conn, ordered[0], now)
    )
    row_ids = {(r[1], r[2]): r[0] for r in inserted}
    stored = {p.key: p.payload for p in ordered}  # the payload each id is recorded with
    for p in ordered:
        if p.key not in row_ids:
            response, stored[p.key] = conn.execute(
                select(events.c.response, events.c.payload).where(
                    events.c.client_id == p.client_id, events.c.event_key == p.event.id
                )
            ).one()
            results[p.key] = Accepted(response, False, conflict=not same_payload(stored[p.key], p.payload))
    new = [p for p in first.values() if p.key in row_ids]  # arrival order
    case_items = [p for p in new if p.kind.audience == "case_citizen"]
    if case_items:
        _accept_case_events(conn, case_items, row_ids, policy, now, results)
    for p in new:
        if p.kind.audience == "subscribers":
            results[p.key] = _accept_broadcast(conn, p, row_ids[p.key], policy, now)
    if new:
        conn.execute(
            update(events).where(events.c.id == bindparam("rid")).values(response=bindparam("resp")),
            [{"rid": row_ids[p.key], "resp": results[p.key].response} for p in new],
        )
    out = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        result = results[item.key]
        if item.key in seen:  # the same event twice in one batch: the second is a duplicate
            conflict = not same_payload(stored[item.key], item.payload)
            result = Accepted(result.response, False, conflict=conflict)
        seen.add(item.key)
        out.append(result)
    return out


def accept_signed_events(
    conn: Connection,
    items: list[Prepared],
    signatures: list[Seen | None],
    policy: NoticePolicy,
    now: datetime,
) -> list[Accepted]:
    """accept_events() after registering the requests' signatures in the same transaction: an
    item whose signature was seen before is answered as a replay and not accepted."""
    signed = [(i, s) for i, s in enumerate(signatures) if s is not None]
    fresh = register_new(conn, [s for _, s in signed]) if signed else []
    replayed = {i for (i, _), new in zip(signed, fresh, strict=True) if not new}
    wanted = [p for i, p in enumerate(items) if i not in replayed]
    accepted = iter(accept_events(conn, wanted, policy, now) if wanted else [])
    return [Accepted({}, False, replay=True) if i in replayed else next(accepted) for i in range(len(items))]


def _insert_one(conn: Connection, p: Prepared, now: datetime) -> list[tuple]:
    row = conn.execute(
        insert_ignoring_conflicts(conn, events, ["client_id", "event_key"])
        .values(
            client_id=p.client_id, event_key=p.event.id, type=p.event.type, payload=p.payload, received_at=now
        )
        .returning(events.c.id, events.c.client_id, events.c.event_key)
    ).first()
    return [tuple(row)] if row is not None else []


def _accept_case_events(
    conn: Connection,
    items: list[Prepared],
    row_ids: dict[tuple[str, str], int],
    policy: NoticePolicy,
    now: datetime,
    results: dict[tuple[str, str], Accepted],
) -> None:
    # citizens: insert the new ones, read all, apply language / name changes in arrival order
    numbers = sorted({p.event.citizen.msisdn for p in items})
    firsts = {}
    for p in items:
        firsts.setdefault(p.event.citizen.msisdn, p.event.citizen)
    conn.execute(
        insert_ignoring_conflicts(conn, citizens, ["msisdn"]),
        [
            {
                "msisdn": n,
                "language": firsts[n].language or "es",
                "name": firsts[n].name,
                "created_at": now,
                "updated_at": now,
            }
            for n in numbers
        ],
    )
    people = {
        r.msisdn: _Citizen(r.id, bool(r.opted_out), r.language, r.name)
        for r in conn.execute(
            select(
                citizens.c.id, citizens.c.msisdn, citizens.c.opted_out, citizens.c.language, citizens.c.name
            ).where(citizens.c.msisdn.in_(numbers))
        )
    }
    for p in items:
        c, who = people[p.event.citizen.msisdn], p.event.citizen
        if (who.language and who.language != c.language) or (who.name and who.name != c.name):
            c.language, c.name, c.dirty = who.language or c.language, who.name or c.name, True
    dirty = [c for c in people.values() if c.dirty]
    if dirty:
        conn.execute(
            update(citizens)
            .where(citizens.c.id == bindparam("cid"))
            .values(language=bindparam("lang"), name=bindparam("nm"), updated_at=now),
            [{"cid": c.id, "lang": c.language, "nm": c.name} for c in dirty],
        )
    # enrolment: a citizen with no case and no subscription yet gets the offer on their first case
    fresh_people: set[int] = set()
    if policy.enrolment:
        ids = [c.id for c in people.values()]
        with_cases = set(
            conn.execute(select(cases.c.citizen_id).where(cases.c.citizen_id.in_(ids))).scalars()
        )
        subscribed = set(
            conn.execute(
                select(subscriptions.c.citizen_id).where(subscriptions.c.citizen_id.in_(ids))
            ).scalars()
        )
        fresh_people = set(ids) - with_cases - subscribed
    # cases: insert the new ones (the first event of a folio creates it), then follow every event
    folios = sorted({p.event.case.folio for p in items})
    creators: dict[str, Prepared] = {}
    for p in items:
        creators.setdefault(p.event.case.folio, p)
    created = (
        set(
            conn.execute(
                insert_ignoring_conflicts(conn, cases, ["folio"]).returning(cases.c.folio),
                [
                    {
                        "folio": f,
                        "citizen_id": people[creators[f].event.citizen.msisdn].id,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for f in folios
                ],
            ).scalars()
        )
        if len(folios) > 1
        else _insert_case(conn, folios[0], people[creators[folios[0]].event.citizen.msisdn].id, now)
    )
    case_ids = dict(conn.execute(select(cases.c.folio, cases.c.id).where(cases.c.folio.in_(folios))).all())
    case_updates = []
    for p in items:
        case = p.event.case
        values = {
            "cid": case_ids[case.folio],
            "b_citizen": people[p.event.citizen.msisdn].id,
            "b_category": case.category,
            "b_status": case.status,
            "b_progress": case.progress,
            "b_resolved": None,
            "b_closed": None,
        }
        if p.event.type == "case.resolved":
            values["b_resolved"] = case.resolution_date or _local_date(
                to_naive_utc(p.event.occurred_at) if p.event.occurred_at else now, policy
            )
        elif p.event.type == "case.closed":
            values["b_closed"] = now
        case_updates.append(values)
    c = cases.c
    conn.execute(
        update(cases)
        .where(c.id == bindparam("cid"))
        .values(
            citizen_id=bindparam("b_citizen"),
            category=func.coalesce(bindparam("b_category", type_=c.category.type), c.category),
            status=func.coalesce(bindparam("b_status", type_=c.status.type), c.status),
            progress=func.coalesce(bindparam("b_progress", type_=c.progress.type), c.progress),
            resolved_on=func.coalesce(bindparam("b_resolved", type_=c.resolved_on.type), c.resolved_on),
            closed_at=func.coalesce(bindparam("b_closed", type_=c.closed_at.type), c.closed_at),
            updated_at=now,
        ),
        case_updates,
    )
    # texts and timing; appointments and their reminders
    rows, owners = [], []
    skipped: dict[tuple[str, str], list[dict]] = {}  # who an event does not reach, and why
    enrolled: set[int] = set()
    for p in items:
        event, person = p.event, people[p.event.citizen.msisdn]
        case_id = case_ids[event.case.folio]
        useless_after = policy.useless_after(event)
        context_override = None
        if event.type == "appointment.scheduled":
            appointment = event.case.appointment
            appointments.schedule(
                conn,
                case_id=case_id,
                citizen_id=person.id,
                client_id=p.client_id,
                folio=event.case.folio,
                at=to_naive_utc(appointment.at),
                place=appointment.place,
                event_id=row_ids[p.key],
                event_key=event.id,
                reminders=policy.reminder_times(appointment.at, now),
                now=now,
            )
        elif event.type == "appointment.cancelled":
            previous = appointments.cancel(conn, case_id, now)
            if previous is not None:
                if event.case.appointment is None and previous["status"] != appointments.CANCELLED:
                    context_override = {"appointment_at": previous["at"], "place": previous["place"]}
                    useless_after = previous["at"] if previous["at"] > now else None
        if person.opted_out:
            who = {"msisdn": mask_msisdn(event.citizen.msisdn), "reason": SKIPPED_OPTED_OUT}
            skipped.setdefault(p.key, []).append(who)
            continue
        if context_override:
            context = {**policy.composer.context(event, now), **context_override}
            text = policy.composer.render(event.type, person.language, context)
        else:
            text = policy.text_for(p, person.language, now)
        if (
            person.id in fresh_people
            and person.id not in enrolled
            and event.case.folio in created
            and creators[event.case.folio] is p
        ):
            text = policy.composer.with_enrolment(text, person.language)
            enrolled.add(person.id)
        timing = policy.timing(now, p.priority, event.type, useless_after)
        rows.append(
            {
                "event_id": row_ids[p.key],
                "citizen_id": person.id,
                "msisdn": event.citizen.msisdn,
                "language": person.language,
                "body": text.body,
                "encoding": text.encoding,
                "segments": text.segments,
                "priority": int(p.priority),
                "status": timing.status.value,
                "not_before": timing.not_before,
                "expires_at": timing.expires_at,
            }
        )
        owners.append(p.key)
    ids = outbox.enqueue(conn, rows, now)
    by_event: dict[tuple[str, str], list[int]] = {}
    for key, mid in zip(owners, ids, strict=True):
        by_event.setdefault(key, []).append(mid)
    for p in items:
        message_ids = by_event.get(p.key, [])
        response = {"event_id": p.event.id, "message_ids": message_ids, "recipients": len(message_ids)}
        if p.key in skipped:
            response["skipped"] = skipped[p.key]
        results[p.key] = Accepted(response, True)


def _insert_case(conn: Connection, folio: str, citizen_id: int, now: datetime) -> set[str]:
    row = conn.execute(
        insert_ignoring_conflicts(conn, cases, ["folio"])
        .values(folio=folio, citizen_id=citizen_id, created_at=now, updated_at=now)
        .returning(cases.c.folio)
    ).first()
    return {row[0]} if row is not None else set()


def _accept_broadcast(
    conn: Connection, p: Prepared, event_row_id: int, policy: NoticePolicy, now: datetime
) -> Accepted:
    timing = policy.timing(now, p.priority, p.event.type, policy.useless_after(p.event))
    zone_ids = None if p.zone_keys is None else ids_for(conn, policy.zones, p.zone_keys, now)
    broadcast_id, recipients = broadcasts.create(
        conn,
        event_id=event_row_id,
        client_id=p.client_id,
        event_type=p.event.type,
        topic=p.kind.topic,
        zone_ids=zone_ids,
        scope=policy.broadcast_scope(p),
        priority=int(p.priority),
        texts={
            lang: {"body": t.body, "encoding": t.encoding, "segments": t.segments}
            for lang, t in p.texts.items()
        },
        message_status=timing.status.value,
        not_before=timing.not_before,
        expires_at=timing.expires_at,
        now=now,
    )
    response = {
        "event_id": p.event.id,
        "broadcast_id": broadcast_id,
        "message_ids": [],
        "recipients": recipients,
        "status": timing.status.value if recipients else "done",
    }
    return Accepted(response, True, broadcast_id=broadcast_id)


def accept_event(
    conn: Connection,
    client_id: str,
    event: Event,
    payload: dict,
    composer: Composer,
    validity: timedelta,
    now: datetime,
) -> tuple[dict, bool]:
    """One event, without quiet hours or enrolment (kept for embedding and tests).
    Returns (the response to give, whether this call created the event)."""
    policy = NoticePolicy.simple(composer, validity)
    prepared = policy.prepare(client_id, event, payload, now)
    (result,) = accept_events(conn, [prepared], policy, now)
    return result.response, result.created


# --- group commit -----------------------------------------------------------------------------------


class IntakeBatcher:
    """Accepts prepared events in batches on the database thread (group commit).

    :meth:`submit` returns when the event's transaction has committed. One batch is in flight at
    a time: requests arriving meanwhile form the next one. If a batch fails, its events are
    retried one per transaction so one bad event cannot fail the others. A request's signature,
    given to :meth:`submit`, is registered in the same transaction (a replay is not accepted).
    """

    def __init__(
        self,
        db: Database,
        policy: NoticePolicy,
        now: Callable[[], datetime],
        max_batch: int = 200,
        after_commit: Callable[[list[Accepted]], None] | None = None,
    ):
        self.db = db
        self.policy = policy
        self.now = now
        self.max_batch = max_batch
        self.after_commit = after_commit
        self._pending: list[tuple[Prepared, Seen | None, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def submit(self, item: Prepared, signature: Seen | None = None) -> Accepted:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, signature, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="intake-batcher")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            items = [item for item, _, _ in batch]
            signatures = [signature for _, signature, _ in batch]
            try:
                results = await self.db.run(accept_signed_events, items, signatures, self.policy, self.now())
            except Exception as exc:
                if len(batch) == 1:
                    _, _, future = batch[0]
                    if not future.done():
                        future.set_exception(exc)
                    continue
                log.warning("intake batch failed; accepting its events one by one", size=len(batch))
                for item, signature, future in batch:
                    try:
                        (result,) = await self.db.run(
                            accept_signed_events, [item], [signature], self.policy, self.now()
                        )
                    except Exception as exc:
                        if not future.done():
                            future.set_exception(exc)
                        continue
                    self._resolve([(future, result)])
                continue
            self._resolve([(f, r) for (_, _, f), r in zip(batch, results, strict=True)])

    def _resolve(self, pairs: list[tuple[asyncio.Future, Accepted]]) -> None:
        for future, result in pairs:
            if not future.done():
                future.set_result(result)
        if self.after_commit is not None:
            try:
                self.after_commit([r for _, r in pairs])
            except Exception:
                log.exception("after-commit hook failed")
