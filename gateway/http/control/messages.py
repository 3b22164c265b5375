"""The control room's messages: search (folio, number in any Mexican form, status, time range), a
message's story, and an operator's retry or cancel (through OperatorActions, as the CRM API).
A search by number answers whole numbers and is written to the audit log."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.domain.operators import Role
from gateway.domain.phone import MSISDN_SCHEMA, InvalidNumber, normalize_msisdn
from gateway.domain.status import MessageStatus
from gateway.store import reads
from smpp_client.constants import Status

from ..api.schemas import MessageDelivery, RetryResult
from ..operations import ID, MAX_ID, OPERATOR, Operation, answer, path_id, problem
from ..operators.context import audit
from ..operators.web import requires
from ..problems import Problem
from ..query import parse_query, whole_number
from ..responses import Answer, UtcTime, model_response
from .context import CONTROL, act, answers_problems

MAX_LIMIT = 200


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


@requires(Role.OPERATOR)
@answers_problems
async def retry_message(request: web.Request) -> web.Response:
    actions = request.config_dict[CONTROL].actions
    wanted, result = await act(request, "message", actions.retry_message, "Cannot retry", "not-retryable")
    await audit(request, "message.retry", f"message:{wanted}", {"was": result["previous_status"]})
    return model_response(RetryResult.model_validate(result))


class MessageCancelled(Answer):
    id: int
    status: MessageStatus
    previous_status: MessageStatus


@requires(Role.OPERATOR)
@answers_problems
async def cancel_message(request: web.Request) -> web.Response:
    actions = request.config_dict[CONTROL].actions
    wanted, result = await act(request, "message", actions.cancel_message, "Cannot cancel", "not-cancellable")
    await audit(request, "message.cancel", f"message:{wanted}", {"was": result["previous_status"]})
    return model_response(MessageCancelled.model_validate(result))


def operations(mount: str) -> tuple[Operation, ...]:
    unauthenticated = problem("No operator session")
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
    )
