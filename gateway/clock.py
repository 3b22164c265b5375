"""The one place that reads the wall clock; tests replace it to control time."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Naive UTC, as stored in the database."""
    return datetime.now(UTC).replace(tzinfo=None)


def now() -> datetime:
    """:func:`utcnow` looked up at each call: the default clock of services, so a test that
    replaces ``utcnow`` controls them too."""
    return utcnow()
