"""Message statuses and priorities (docs/api.md)."""

from enum import IntEnum, StrEnum


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"
    HELD = "held"


FINAL_STATUSES = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERABLE,
        MessageStatus.EXPIRED,
        MessageStatus.REJECTED,
        MessageStatus.FAILED,
        MessageStatus.CANCELLED,
    }
)


class Priority(IntEnum):
    """Lower sorts first in the outbox."""

    EMERGENCY = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3

    @classmethod
    def parse(cls, name: str) -> "Priority":
        return cls[name.upper()]
