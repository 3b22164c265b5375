"""The control room: what an operator searches, reads and does from the dashboard.

Search messages (folio, number in any Mexican form, status, time range) and read one message's
story; retry or cancel a message, cancel a broadcast, pause and resume a carrier; the broadcasts'
progress and reach by colonia. Actions go through :class:`OperatorActions`, the service the CRM
API calls; they need the role ``operator`` and the session's CSRF token (the middlewares), and
each one is written to the audit log, as is every search by number (its answers show whole
numbers).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.domain.operators import Role
from gateway.domain.phone import MSISDN_SCHEMA, InvalidNumber, normalize_msisdn
from gateway.domain.status import MessageStatus
from gateway.services.citizen_data import CitizenData
from gateway.services.operator_actions import NotAllowed, OperatorActions, UnknownCarrier
from gateway.store import carrier_pauses, reads
from gateway.store.db import Database
from smpp_client.constants import Status

from .api.schemas import (
    BroadcastType,
    CancelResult,
    MessageDelivery,
    PriorityName,
    RetryResult,
    Topic,
    priority_name,
)
from .operations import ID, MAX_ID, OPERATOR, Operation, PathParameter, answer, path_id, problem
from .operators.context import SESSION, audit
from .operators.web import Handler, requires
from .problems import Problem
from .query import parse_query, whole_number
from .responses import Answer, UtcTime, model_response

MAX_LIMIT = 200
BROADCASTS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class ControlRoom:
    """What the control room's handlers need, built by the composition root."""

    db: Database
    actions: OperatorActions
    citizens: CitizenData
    tz: ZoneInfo  # the city's: a time range typed without an offset is in it


CONTROL = web.AppKey("control_room", ControlRoom)


def answers_problems(handler: Handler) -> Handler:
    """A Problem raised by ``handler`` is answered here (the dashboard has no problem middleware)."""

    @functools.wraps(handler)
    async def answering(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Problem as exc:
            return exc.response(request.path)

    return answering


# --- search --------------------------------------------------------------------------------------


class SearchQuery(BaseModel):
    """The control room's search; every parameter given narrows it (``lang`` is the page's)."""

    model_config = ConfigDict(extra="ignore")

    folio: str | None = Field(default=None, max_length=64, description="a case's folio")
    msisdn: str | None = Field(
        default=None,
        json_schema_extra={**MSISDN_SCHEMA, "description": f"the recipient: {MSISDN_SCHEMA['description']}"},
    )
    status: list[MessageStatus] = Field(default_factory=list, description="one or more, comma-separated")
    since: datetime | None = Field(
        default=None, description="created at or after: ISO 8601; without an offset, the city's time"
    )
    until: datetime | None = Field(default=None, description="created before (as since)")
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    cursor: int | None = Field(default=None, ge=1, le=MAX_ID, description="next_cursor of the previous page")

    @field_validator("folio", "msisdn", mode="before")
    @classmethod
    def _blank(cls, value: str) -> str | None:
        return value.strip() or None

    @field_validator("msisdn", mode="after")
    @classmethod
    def _number(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_msisdn(value)
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from None

    @field_validator("status", mode="before")
    @classmethod
    def _statuses(cls, values: list[str]) -> list[str]:
        statuses = [s.strip().lower() for value in values for s in value.split(",") if s.strip()]
        known = {s.value for s in MessageStatus}
        wrong = [s for s in statuses if s not in known]
        if wrong:
            raise ValueError(f"unknown status {', '.join(wrong)}; known: {', '.join(sorted(known))}")
        return statuses

    @field_validator("since", "until", mode="before")
    @classmethod
    def _time(cls, value: str) -> datetime | None:
        if not value.strip():
            return None
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO 8601 time, e.g. 2026-12-01T18:30") from None

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: str) -> int:
        return whole_number(value, MAX_LIMIT)

    @field_validator("cursor", mode="before")
    @classmethod
    def _cursor(cls, value: str) -> int:
        return whole_number(value, MAX_ID)

    def search(self, tz: ZoneInfo) -> reads.MessageSearch:
        def utc(moment: datetime | None) -> datetime | None:
            if moment is None:
                return None
            aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
            return aware.astimezone(UTC).replace(tzinfo=None)

        return reads.MessageSearch(
            folio=self.folio,
            msisdn=self.msisdn,
            statuses=[s.value for s in self.status],
            since=utc(self.since),
            until=utc(self.until),
            before_id=self.cursor,
            limit=self.limit,
        )


class FoundMessage(MessageDelivery):
    folio: str | None = Field(description="its case's folio; null for a broadcast or a reply")
    number: str | None = Field(description="the whole number: only in a search by number (audited)")


class SearchResult(Answer):
    items: list[FoundMessage]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


@answers_problems
async def search(request: web.Request) -> web.Response:
    control = request.config_dict[CONTROL]
    query = parse_query(SearchQuery, request.query, status=422)
    rows, cursor = await control.db.run(reads.search_messages, query.search(control.tz))
    whole = query.msisdn is not None
    if whole:
        detail = {"results": len(rows), "filters": _filters(query)}
        await audit(request, "message.view_number", f"msisdn:{query.msisdn}", detail)
    items = [
        FoundMessage(
            **MessageDelivery.fields_of(row), folio=row["folio"], number=row["msisdn"] if whole else None
        )
        for row in rows
    ]
    return model_response(SearchResult(items=items, next_cursor=str(cursor) if cursor else None))


def _filters(query: SearchQuery) -> dict:
    given = query.model_dump(mode="json", exclude={"msisdn", "limit", "cursor"}, exclude_defaults=True)
    return {k: v for k, v in given.items() if v}


# --- a message's story ---------------------------------------------------------------------------

_SMPP_NAME = re.compile(r"\b(ESME_[A-Z_]+)\b")


class StoryEntry(Answer):
    status: MessageStatus
    at: UtcTime
    detail: str | None
    smpp_code: int | None = Field(description="the SMPP command_status the detail names, if any")
    smpp_name: str | None


class StoryPart(Answer):
    seq: int
    carrier: str
    smsc_message_id: str
    status: MessageStatus
    error_code: str | None = Field(description="the receipt's err: field")
    submitted_at: UtcTime
    done_at: UtcTime | None


class Story(MessageDelivery):
    """One message as it went: every status with its time, its parts by carrier."""

    folio: str | None
    event_type: str | None
    history: list[StoryEntry]
    parts: list[StoryPart]


def _entry(row: dict) -> StoryEntry:
    found = _SMPP_NAME.search(row["detail"] or "")
    code = Status[found.group(1)].value if found and found.group(1) in Status.__members__ else None
    return StoryEntry(
        status=row["status"],
        at=row["at"],
        detail=row["detail"],
        smpp_code=code,
        smpp_name=found.group(1) if code is not None else None,
    )


@answers_problems
async def story(request: web.Request) -> web.Response:
    wanted = path_id(request, "message")
    row = await request.config_dict[CONTROL].db.run(reads.message_story, wanted)
    if row is None:
        raise Problem(404, "Not found", f"no message {wanted}")
    return model_response(
        Story(
            **MessageDelivery.fields_of(row),
            folio=row["folio"],
            event_type=row["event_type"],
            history=[_entry(h) for h in row["history"]],
            parts=row["parts"],
        )
    )


# --- actions -------------------------------------------------------------------------------------


def _by(request: web.Request) -> str:
    return f"operator:{request[SESSION].operator.username}"


@requires(Role.OPERATOR)
@answers_problems
async def retry_message(request: web.Request) -> web.Response:
    wanted = path_id(request, "message")
    try:
        result = await request.config_dict[CONTROL].actions.retry_message(
            wanted, client_id=None, by=_by(request)
        )
    except NotAllowed as exc:
        raise Problem(409, "Cannot retry", str(exc), [("id", str(exc))], slug="not-retryable") from None
    if result is None:
        raise Problem(404, "Not found", f"no message {wanted}")
    await audit(request, "message.retry", f"message:{wanted}", {"was": result["previous_status"]})
    return model_response(RetryResult.model_validate(result))


class MessageCancelled(Answer):
    id: int
    status: MessageStatus
    previous_status: MessageStatus


@requires(Role.OPERATOR)
@answers_problems
async def cancel_message(request: web.Request) -> web.Response:
    wanted = path_id(request, "message")
    try:
        result = await request.config_dict[CONTROL].actions.cancel_message(
            wanted, client_id=None, by=_by(request)
        )
    except NotAllowed as exc:
        raise Problem(409, "Cannot cancel", str(exc), [("id", str(exc))], slug="not-cancellable") from None
    if result is None:
        raise Problem(404, "Not found", f"no message {wanted}")
    await audit(request, "message.cancel", f"message:{wanted}", {"was": result["previous_status"]})
    return model_response(MessageCancelled.model_validate(result))


@requires(Role.OPERATOR)
@answers_problems
async def cancel_broadcast(request: web.Request) -> web.Response:
    wanted = path_id(request, "broadcast")
    try:
        result = await request.config_dict[CONTROL].actions.cancel_broadcast(
            wanted, client_id=None, by=_by(request)
        )
    except NotAllowed as exc:
        raise Problem(409, "Cannot cancel", str(exc), [("id", str(exc))], slug="not-cancellable") from None
    if result is None:
        raise Problem(404, "Not found", f"no broadcast {wanted}")
    detail = {"was": result["previous_status"], "cancelled": result["cancelled"]}
    await audit(request, "broadcast.cancel", f"broadcast:{wanted}", detail)
    return model_response(
        CancelResult(
            id=wanted,
            status="cancelled",
            previous_status=result["previous_status"],
            cancelled=result["cancelled"],
        )
    )


CARRIER = PathParameter("name", {"type": "string", "maxLength": 32}, "the carrier's name as configured")


class CarrierPause(Answer):
    carrier: str
    paused: bool = Field(description="its state now")
    changed: bool = Field(description="false: it was already so")


def _carrier_action(pausing: bool) -> Handler:
    @requires(Role.OPERATOR)
    @answers_problems
    async def act(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        actions = request.config_dict[CONTROL].actions
        try:
            by = request[SESSION].operator.username
            if pausing:
                changed = await actions.pause_carrier(name, by=by)
            else:
                changed = await actions.resume_carrier(name, by=by)
        except UnknownCarrier as exc:
            raise Problem(404, "Not found", str(exc), [("name", str(exc))]) from None
        if changed:
            await audit(request, "carrier.pause" if pausing else "carrier.resume", f"carrier:{name}")
        return model_response(CarrierPause(carrier=name, paused=pausing, changed=changed))

    return act


# --- broadcasts ----------------------------------------------------------------------------------


class Progress(Answer):
    """A broadcast's messages by where they are; pending: recipients not fanned out yet."""

    pending: int
    queued: int = Field(description="queued or held")
    submitted: int
    delivered: int
    failed: int = Field(description="failed, undeliverable or rejected")
    expired: int
    cancelled: int


_BUCKETS = {
    "queued": "queued",
    "held": "queued",
    "submitted": "submitted",
    "delivered": "delivered",
    "failed": "failed",
    "undeliverable": "failed",
    "rejected": "failed",
    "expired": "expired",
    "cancelled": "cancelled",
}


def progress(recipients: int, by_status: dict[str, int]) -> Progress:
    buckets = dict.fromkeys(("queued", "submitted", "delivered", "failed", "expired", "cancelled"), 0)
    for status, count in by_status.items():
        buckets[_BUCKETS[status]] += count
    return Progress(pending=max(0, recipients - sum(by_status.values())), **buckets)


class BroadcastProgress(Answer):
    id: int
    event_id: str
    type: BroadcastType
    topic: Topic
    priority: PriorityName
    status: str = Field(description="pending, running, done, cancelled or expired")
    recipients: int
    segments: int = Field(description="SMS segments of its messages so far")
    progress: Progress
    created_at: UtcTime
    finished_at: UtcTime | None


class BroadcastList(Answer):
    items: list[BroadcastProgress]


def broadcast_progress(row: dict) -> BroadcastProgress:
    return BroadcastProgress(
        id=row["id"],
        event_id=row["event_key"],
        type=row["type"],
        topic=row["topic"],
        priority=priority_name(row["priority"]),
        status=row["status"],
        recipients=row["recipients"],
        segments=row["segments"],
        progress=progress(row["recipients"], row["messages"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


async def list_broadcasts(request: web.Request) -> web.Response:
    rows = await request.config_dict[CONTROL].db.run(reads.recent_broadcasts, BROADCASTS_SHOWN)
    return model_response(BroadcastList(items=[broadcast_progress(r) for r in rows]))


class ZoneReach(Answer):
    zone: str | None = Field(description="the colonia; null: every colonia")
    delivered: int
    failed: int = Field(description="failed, undeliverable, rejected or expired")
    pending: int = Field(description="queued, held or submitted")
    cancelled: int


class Reach(Answer):
    id: int
    zones: list[ZoneReach] = Field(description="by colonia name; every colonia last")


_REACH = {
    "delivered": "delivered",
    "queued": "pending",
    "held": "pending",
    "submitted": "pending",
    "cancelled": "cancelled",
}


@answers_problems
async def reach(request: web.Request) -> web.Response:
    wanted = path_id(request, "broadcast")
    db = request.config_dict[CONTROL].db
    if not await db.run(reads.broadcast_exists, wanted):
        raise Problem(404, "Not found", f"no broadcast {wanted}")
    zones: dict[str | None, dict[str, int]] = {}
    for zone, status, count in await db.run(reads.broadcast_reach, wanted):
        counts = zones.setdefault(zone, dict.fromkeys(("delivered", "failed", "pending", "cancelled"), 0))
        counts[_REACH.get(status, "failed")] += count
    ordered = sorted(zones.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return model_response(Reach(id=wanted, zones=[ZoneReach(zone=z, **c) for z, c in ordered]))


# --- carriers ------------------------------------------------------------------------------------


class CarrierState(Answer):
    carrier: str
    paused: bool
    paused_by: str | None
    paused_at: UtcTime | None


def carrier_states(carriers: tuple[str, ...], pauses: list[dict]) -> list[CarrierState]:
    by_name = {p["carrier"]: p for p in pauses}
    return [
        CarrierState(
            carrier=name,
            paused=name in by_name,
            paused_by=by_name.get(name, {}).get("paused_by"),
            paused_at=by_name.get(name, {}).get("paused_at"),
        )
        for name in carriers
    ]


async def list_carriers(request: web.Request) -> web.Response:
    control = request.config_dict[CONTROL]
    pauses = await control.db.run(carrier_pauses.listing)
    return model_response(CarrierList(items=carrier_states(control.actions.carriers, pauses)))


class CarrierList(Answer):
    items: list[CarrierState]


def operations(mount: str) -> tuple[Operation, ...]:
    unauthenticated = problem("No operator session")
    forbidden = problem("The operator's role is viewer: they cannot act")
    csrf = problem("Missing or wrong CSRF token, or the role does not allow it")
    return (
        Operation(
            "GET",
            f"{mount}/messages",
            search,
            "controlSearch",
            "Search messages by folio, number (any Mexican form; audited, answers whole numbers), "
            "status and time range, newest first",
            {
                "200": answer(SearchResult, "a page of messages"),
                "401": unauthenticated,
                "422": problem("a parameter is wrong (named)"),
            },
            security=OPERATOR,
            query=SearchQuery,
        ),
        Operation(
            "GET",
            f"{mount}/messages/{{id}}",
            story,
            "controlStory",
            "One message's story: every status with its time, SMPP code and name, its parts by carrier",
            {"200": answer(Story, "the story"), "401": unauthenticated, "404": problem("No such message")},
            security=OPERATOR,
            path_parameters=(ID,),
        ),
        Operation(
            "POST",
            f"{mount}/messages/{{id}}/retry",
            retry_message,
            "controlRetry",
            "Send a failed, expired, undeliverable or rejected message again (operators; audited)",
            {
                "200": answer(RetryResult, "queued again"),
                "403": csrf,
                "404": problem("No such message"),
                "409": problem("Its status does not allow a retry, or its citizen opted out"),
            },
            security=OPERATOR,
            path_parameters=(ID,),
        ),
        Operation(
            "POST",
            f"{mount}/messages/{{id}}/cancel",
            cancel_message,
            "controlCancelMessage",
            "Cancel a queued or held message not yet handed to a carrier (operators; audited)",
            {
                "200": answer(MessageCancelled, "cancelled"),
                "403": csrf,
                "404": problem("No such message"),
                "409": problem("It has left already or ended"),
            },
            security=OPERATOR,
            path_parameters=(ID,),
        ),
        Operation(
            "GET",
            f"{mount}/broadcasts",
            list_broadcasts,
            "controlBroadcasts",
            f"The latest {BROADCASTS_SHOWN} broadcasts with their progress, newest first",
            {"200": answer(BroadcastList, "broadcasts"), "401": unauthenticated},
            security=OPERATOR,
        ),
        Operation(
            "GET",
            f"{mount}/broadcasts/{{id}}/reach",
            reach,
            "controlReach",
            "A broadcast's messages by colonia: delivered, failed, pending",
            {"200": answer(Reach, "by colonia"), "401": unauthenticated, "404": problem("No such broadcast")},
            security=OPERATOR,
            path_parameters=(ID,),
        ),
        Operation(
            "POST",
            f"{mount}/broadcasts/{{id}}/cancel",
            cancel_broadcast,
            "controlCancelBroadcast",
            "Cancel a broadcast: its queued and held messages become cancelled (operators; audited)",
            {
                "200": answer(CancelResult, "cancelled"),
                "403": csrf,
                "404": problem("No such broadcast"),
                "409": problem("The broadcast is finished or already cancelled; nothing changed"),
            },
            security=OPERATOR,
            path_parameters=(ID,),
        ),
        Operation(
            "GET",
            f"{mount}/carriers",
            list_carriers,
            "controlCarriers",
            "The configured carriers and which are paused",
            {"200": answer(CarrierList, "carriers"), "401": unauthenticated},
            security=OPERATOR,
        ),
        Operation(
            "POST",
            f"{mount}/carriers/{{name}}/pause",
            _carrier_action(True),
            "controlPauseCarrier",
            "Pause a carrier: its messages wait in the outbox, in every gateway process (operators; audited)",
            {"200": answer(CarrierPause, "paused"), "403": forbidden, "404": problem("No such carrier")},
            security=OPERATOR,
            path_parameters=(CARRIER,),
        ),
        Operation(
            "POST",
            f"{mount}/carriers/{{name}}/resume",
            _carrier_action(False),
            "controlResumeCarrier",
            "Resume a paused carrier (operators; audited)",
            {"200": answer(CarrierPause, "resumed"), "403": forbidden, "404": problem("No such carrier")},
            security=OPERATOR,
            path_parameters=(CARRIER,),
        ),
    )
