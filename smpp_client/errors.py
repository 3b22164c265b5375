"""What a submit_sm answer means for the message: throttling, temporary, routing or permanent.

Kannel and Jasmin practice (reference.md 2.4): ESME_RTHROTTLED and ESME_RMSGQFUL ask the client to
slow down; ESME_RSYSERR, ESME_RX_T_APPN and ESME_RINVSCHED are temporary; a link lost or a response
that never came are temporary too (the SMSC may or may not have the message). Everything else is
permanent for that message, except the statuses a carrier is configured to ``failover_on``: those
send the message to the next carrier.

An ESME_ROK whose message id cannot be used (over 64 octets, empty, not visible ASCII:
:mod:`smpp_client.message_ids`) is INVALID_MESSAGE_ID, a fault of that carrier: its SMSC may well
deliver the message, but no receipt could ever be matched to it and the id cannot be stored, so the
message is not recorded as submitted there. It goes to the next carrier when routing allows (that
one can be tracked), else back to the outbox with backoff like a temporary error; the citizen may
get it twice, which beats a message whose fate nobody can know.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from .constants import Status, status_name

# Pseudo statuses (negative: never on the wire) for failures that have no SMPP status.
LINK_LOST = -1  # the link closed before the answer came
RESPONSE_TIMEOUT = -2  # no answer within response_timeout_seconds
NO_ROUTE = -3  # no carrier with a bound link could take the message
BAD_RESPONSE = -4  # an answer came that could not be decoded
INVALID_MESSAGE_ID = -5  # accepted, but with a message id that cannot be used

_PSEUDO_NAMES = {
    LINK_LOST: "link lost",
    RESPONSE_TIMEOUT: "response timeout",
    NO_ROUTE: "no bound carrier",
    BAD_RESPONSE: "undecodable response",
    INVALID_MESSAGE_ID: "unusable message id",
}


class ErrorClass(Enum):
    OK = "ok"
    THROTTLE = "throttle"  # slow down and resend; never a failed attempt
    TEMPORARY = "temporary"  # resend later, with backoff, within the validity
    LINK = "link"  # link lost / no answer: resend (the SMSC may have it: a possible duplicate)
    ROUTING = "routing"  # this carrier cannot take it: try the next one
    CARRIER = "carrier"  # this carrier's answer is unusable: the next one, else back to the outbox
    PERMANENT = "permanent"  # fail the message at once, code and name recorded


# what goes back to the outbox with backoff when nothing of the message was accepted
TEMPORARY_CLASSES = frozenset({ErrorClass.TEMPORARY, ErrorClass.LINK, ErrorClass.CARRIER})

THROTTLE_STATUSES = frozenset({Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL})
TEMPORARY_STATUSES = frozenset({Status.ESME_RSYSERR, Status.ESME_RX_T_APPN, Status.ESME_RINVSCHED})
DEFAULT_FAILOVER_ON = ("ESME_RSUBMITFAIL",)


def error_name(code: int) -> str:
    """ESME_RINVDSTADR for 0x0B, "link lost" for LINK_LOST, 0x00000400 for an unknown code."""
    return _PSEUDO_NAMES.get(code) or status_name(code)


def parse_status(value: int | str) -> int:
    """A status given in configuration: 11, "0x0B", "ESME_RINVDSTADR" or "RINVDSTADR"."""
    if isinstance(value, bool):
        raise ValueError(f"not an SMPP status: {value!r}")
    if isinstance(value, int):
        if not 0 < value <= 0xFFFFFFFF:
            raise ValueError(f"SMPP status out of range: {value}")
        return value
    text = value.strip().upper()
    if text.startswith("0X"):
        return parse_status(int(text, 16))
    if text.isdigit():
        return parse_status(int(text))
    name = text if text.startswith("ESME_") else "ESME_" + text
    try:
        return int(Status[name])
    except KeyError:
        raise ValueError(f"unknown SMPP status {value!r}") from None


def parse_statuses(values: Iterable[int | str]) -> frozenset[int]:
    return frozenset(parse_status(v) for v in values)


def classify(status: int, failover_on: frozenset[int] = frozenset()) -> ErrorClass:
    if status == Status.ESME_ROK:
        return ErrorClass.OK
    if status in THROTTLE_STATUSES:
        return ErrorClass.THROTTLE
    if status == INVALID_MESSAGE_ID:
        return ErrorClass.CARRIER
    if status in (LINK_LOST, RESPONSE_TIMEOUT, BAD_RESPONSE, NO_ROUTE):
        return ErrorClass.LINK
    if status in TEMPORARY_STATUSES:
        return ErrorClass.TEMPORARY
    if status in failover_on:
        return ErrorClass.ROUTING
    return ErrorClass.PERMANENT


class SessionError(Exception):
    """A bind could not do what was asked of it."""


class LinkDown(SessionError):
    """The link closed before the SMSC answered; the request may or may not have arrived."""


class ResponseTimeout(SessionError):
    pass


class NotBound(SessionError):
    pass


class BindRefused(SessionError):
    def __init__(self, status: int):
        super().__init__(f"bind refused: {status_name(status)}")
        self.status = status
