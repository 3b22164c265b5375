"""What the API answers, as pydantic models: the handlers build and serialise them, and the OpenAPI
document is generated from the same classes, so the two cannot disagree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field

from gateway.domain.catalog import BROADCAST_TYPES, TOPICS
from gateway.domain.phone import mask_msisdn
from gateway.domain.status import MessageStatus, Priority
from smpp_client.constants import status_name

from ..responses import Answer, UtcTime, absent

PriorityName = Literal["emergency", "high", "normal", "low"]
Encoding = Literal["gsm7", "ucs2"]
Topic = Literal[TOPICS]  # type: ignore[valid-type]
BroadcastType = Literal[tuple(sorted(BROADCAST_TYPES))]  # type: ignore[misc]


def priority_name(value: int) -> PriorityName:
    return Priority(value).name.lower()  # type: ignore[return-value]


# --- POST /api/v1/events --------------------------------------------------------------------------


class Skipped(Answer):
    msisdn: str = Field(examples=["+52******5678"], description="masked")
    reason: Literal["opted_out"]


class EventAccepted(Answer):
    """The 202 of an event (also repeated to a post of the same event)."""

    event_id: str
    message_ids: list[int] = Field(
        description="messages queued for a case event; empty for a broadcast (see broadcast_id)"
    )
    recipients: int = Field(
        description="recipients of the messages; for a broadcast, counted when it was accepted"
    )
    broadcast_id: int | None = absent("broadcasts only: fanned out after this answer")
    status: Literal["queued", "held", "done"] | None = absent("broadcasts only")
    skipped: list[Skipped] | None = absent(
        "case events only, when someone gets no message: who (masked) and why"
    )


# --- messages ------------------------------------------------------------------------------------


class MessageError(Answer):
    code: int | None = Field(description="the SMPP command_status")
    name: str | None = Field(description="its name (ESME_RINVDSTADR…)")
    text: str | None


class MessageDelivery(Answer):
    """Where a message is, not what it says (the dashboard's view). Built from a row of
    gateway.store.reads."""

    id: int
    to: str = Field(description="masked: +52******5678")
    language: str
    encoding: Encoding
    segments: int
    priority: PriorityName
    status: MessageStatus
    carrier: str | None
    smsc_message_id: str | None
    attempts: int
    created_at: UtcTime
    updated_at: UtcTime
    submitted_at: UtcTime | None
    done_at: UtcTime | None
    expires_at: UtcTime
    error: MessageError | None
    event_id: str | None = Field(description="the CRM's event id; null for a reply to a citizen's SMS")
    broadcast_id: int | None

    @staticmethod
    def fields_of(row: Mapping[str, Any]) -> dict[str, Any]:
        code, text = row["error_code"], row["error_text"]
        error = None
        if code is not None or text:
            error = MessageError(code=code, name=status_name(code) if code is not None else None, text=text)
        return {
            "id": row["id"],
            "to": mask_msisdn(row["msisdn"]),
            "language": row["language"],
            "encoding": row["encoding"],
            "segments": row["segments"],
            "priority": priority_name(row["priority"]),
            "status": row["status"],
            "carrier": row["carrier"],
            "smsc_message_id": row["smsc_message_id"],
            "attempts": row["attempts"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "submitted_at": row["submitted_at"],
            "done_at": row["done_at"],
            "expires_at": row["expires_at"],
            "error": error,
            "event_id": row["event_key"],
            "broadcast_id": row["broadcast_id"],
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**cls.fields_of(row))


class MessageSummary(MessageDelivery):
    """A message as the API lists it: with its text."""

    text: str

    @staticmethod
    def fields_of(row: Mapping[str, Any]) -> dict[str, Any]:
        return {**MessageDelivery.fields_of(row), "text": row["body"]}


class MessagePart(Answer):
    seq: int
    smsc_message_id: str
    status: MessageStatus
    error_code: str | None = Field(description="the receipt's err: field")
    submitted_at: UtcTime
    done_at: UtcTime | None


class HistoryEntry(Answer):
    status: MessageStatus
    at: UtcTime
    detail: str | None


class Message(MessageSummary):
    """One message with its SMPP parts and its status history."""

    parts: list[MessagePart]
    history: list[HistoryEntry]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**cls.fields_of(row), parts=row["parts"], history=row["history"])


class MessageList(Answer):
    items: list[MessageSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")
    limit: int


class RetryResult(Answer):
    id: int
    status: Literal["queued", "held"]
    previous_status: MessageStatus


# --- broadcasts ----------------------------------------------------------------------------------


class BroadcastText(Answer):
    body: str
    encoding: Encoding
    segments: int


class Broadcast(Answer):
    """A broadcast's fan-out progress. Built from gateway.store.broadcasts.get."""

    id: int
    event_id: str
    type: BroadcastType
    topic: Topic
    zones: list[str] | None = Field(description="null: every zone")
    scope: Literal["subscribers", "citizens"]
    priority: PriorityName
    status: Literal["pending", "running", "done", "cancelled", "expired"]
    recipients: int
    queued: int = Field(description="messages queued so far by the fan-out")
    messages: dict[MessageStatus, int] = Field(description="its messages by status")
    texts: dict[str, BroadcastText] = Field(description="the text per language, rendered once")
    not_before: UtcTime
    expires_at: UtcTime
    created_at: UtcTime
    finished_at: UtcTime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(
            id=row["id"],
            event_id=row["event_key"],
            type=row["type"],
            topic=row["topic"],
            zones=row["zone_names"] if row["zone_ids"] is not None else None,
            scope=row["scope"],
            priority=priority_name(row["priority"]),
            status=row["status"],
            recipients=row["recipients"],
            queued=row["queued"],
            messages=row["messages"],
            texts=row["texts"],
            not_before=row["not_before"],
            expires_at=row["expires_at"],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
        )


class CancelResult(Answer):
    id: int
    status: Literal["cancelled"]
    previous_status: str
    cancelled: int = Field(description="messages cancelled (queued or held)")


# --- stats, health -------------------------------------------------------------------------------


class MessageCounts(Answer):
    total: int
    by_status: dict[MessageStatus, int]


class Waiting(Answer):
    queued: int
    held: int = Field(description="held by quiet hours")


class Queue(Answer):
    depth: int = Field(description="queued messages")
    held: int = Field(description="held by quiet hours")
    by_priority: dict[PriorityName, Waiting]


class HourRates(Answer):
    queued: float
    submitted: float
    delivered: float
    failed: float


class LastHour(Answer):
    queued: int
    submitted: int
    delivered: int
    failed: int
    per_minute: HourRates


class Stats(Answer):
    """Counts by status, the last hour's, what waits by priority. Built from gateway.store.reads.stats."""

    at: UtcTime
    messages: MessageCounts
    queue: Queue
    last_hour: LastHour
    broadcasts_in_progress: int
    callbacks_pending: int


class Liveness(Answer):
    status: Literal["ok"]


class Readiness(Answer):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description='each check: "ok" or what is wrong')
