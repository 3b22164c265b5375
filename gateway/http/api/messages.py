"""Messages: one with its parts and history, the filtered list, and an operator's retry."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.domain.phone import MSISDN_SCHEMA, InvalidNumber, normalize_msisdn
from gateway.domain.status import MessageStatus
from gateway.services.operator_actions import NotAllowed
from gateway.store import reads
from gateway.store.reads import MessageFilter

from ..authentication import CLIENT_ID
from ..deps import DEPS
from ..operations import ID, MAX_ID, Operation, answer, path_id, problem
from ..problems import Problem
from ..query import parse_query, whole_number
from ..responses import model_response
from .errors import errors
from .schemas import Message, MessageList, MessageSummary, RetryResult

MAX_LIMIT = 500


class MessageQuery(BaseModel):
    """The filters of GET /api/v1/messages; every one narrows the list."""

    model_config = ConfigDict(extra="forbid")

    status: list[MessageStatus] = Field(default_factory=list, description="one or more, comma-separated")
    event_id: str | None = Field(default=None, description="the CRM's event id")
    msisdn: str | None = Field(
        default=None,
        json_schema_extra={**MSISDN_SCHEMA, "description": f"the recipient: {MSISDN_SCHEMA['description']}"},
    )
    since: datetime | None = Field(default=None, description="created at or after (with an offset)")
    broadcast_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    cursor: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="next_cursor of the previous page (keyset pagination)"
    )

    @field_validator("status", mode="before")
    @classmethod
    def _statuses(cls, values: list[str]) -> list[str]:
        statuses = [s.strip().lower() for value in values for s in value.split(",") if s.strip()]
        known = {s.value for s in MessageStatus}
        wrong = [s for s in statuses if s not in known]
        if wrong or not statuses:
            names = ", ".join(s.value for s in MessageStatus)
            raise ValueError(f"unknown status {', '.join(wrong) or '(empty)'}; known: {names}")
        return statuses

    @field_validator("msisdn", mode="before")
    @classmethod
    def _number(cls, value: str) -> str:
        try:
            return normalize_msisdn(value)
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from None

    @field_validator("since", mode="before")
    @classmethod
    def _utc(cls, value: str) -> datetime:
        """Naive UTC, as the database keeps times."""
        try:
            since = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            since = None
        if since is None or since.tzinfo is None:
            raise ValueError("must be an ISO 8601 time with an offset, e.g. 2026-11-29T10:00:00-06:00")
        try:
            return since.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00:00+14:00 is before the year 1 in UTC
            raise ValueError("out of range: must fall in the years 1 to 9999 in UTC") from None

    @field_validator("broadcast_id", "cursor", mode="before")
    @classmethod
    def _id(cls, value: str) -> int:
        return whole_number(value, MAX_ID)

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: str) -> int:
        return whole_number(value, MAX_LIMIT)

    def filter(self, client_id: str) -> MessageFilter:
        return MessageFilter(
            client_id,
            statuses=[s.value for s in self.status],
            event_key=self.event_id,
            msisdn=self.msisdn,
            since=self.since,
            broadcast_id=self.broadcast_id,
            before_id=self.cursor,
            limit=self.limit,
        )


async def get_message(request: web.Request) -> web.Response:
    client_id = request[CLIENT_ID]
    wanted = path_id(request, "message")
    row = await request.app[DEPS].db.run(reads.get_message, wanted)
    # A CRM sees only its own events' messages; replies to citizens' SMS (no event) stay private
    # (an ESTADO reply carries a case's status) and are visible on the operators' dashboard only.
    if row is None or row["client_id"] != client_id:
        raise Problem(404, "Not found", f"no message {wanted}")
    return model_response(Message.from_row(row))


async def list_messages(request: web.Request) -> web.Response:
    query = parse_query(MessageQuery, request.query)
    rows, next_cursor = await request.app[DEPS].db.run(reads.list_messages, query.filter(request[CLIENT_ID]))
    page = MessageList(
        items=[MessageSummary.from_row(r) for r in rows],
        next_cursor=str(next_cursor) if next_cursor is not None else None,
        limit=query.limit,
    )
    return model_response(page)


async def retry_message(request: web.Request) -> web.Response:
    client_id = request[CLIENT_ID]
    wanted = path_id(request, "message")
    try:
        result = await request.app[DEPS].actions.retry_message(
            wanted, client_id=client_id, by=f"crm:{client_id}"
        )
    except NotAllowed as exc:
        raise Problem(409, "Cannot retry", str(exc), [("id", str(exc))], slug="not-retryable") from None
    if result is None:
        raise Problem(404, "Not found", f"no message {wanted}")
    return model_response(RetryResult.model_validate(result))


OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/messages",
        list_messages,
        "listMessages",
        "List this client's messages, newest first",
        {"200": answer(MessageList, "A page of messages"), **errors("400", "401", "500")},
        query=MessageQuery,
    ),
    Operation(
        "GET",
        "/api/v1/messages/{id}",
        get_message,
        "getMessage",
        "One message with its parts and status history",
        {"200": answer(Message, "The message"), **errors("401", "404", "500")},
        path_parameters=(ID,),
    ),
    Operation(
        "POST",
        "/api/v1/messages/{id}/retry",
        retry_message,
        "retryMessage",
        "Send a failed, expired, undeliverable or rejected message again",
        {
            "200": answer(RetryResult, "Queued again"),
            "409": problem(
                "The message is not failed, expired, undeliverable or rejected, or its citizen opted out"
            ),
            **errors("401", "404", "413", "500"),
        },
        description="Queued again with a fresh validity (held in quiet hours). Empty body, signed.",
        path_parameters=(ID,),
    ),
)
