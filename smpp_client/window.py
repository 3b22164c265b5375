"""The requests of one bind that wait for their responses (the SMPP window).

Each request is a :class:`Pending` entry under a fresh sequence number; its response, matched by
sequence number and kind, resolves it (a callback: no future nor task per message). Entries are
kept in the order they were sent, so those past their deadline are found from the front.
"""

from __future__ import annotations

import asyncio

import structlog

from . import pdu as codec
from .constants import RESPONSE_BIT, Cmd
from .errors import RESPONSE_TIMEOUT, LinkDown, ResponseTimeout

log = structlog.get_logger("smpp_client")

_MAX_SEQ = 0x7FFFFFFF
_GENERIC_NACK = int(Cmd.GENERIC_NACK)


class Pending:
    """A request in the window. Subclasses say what an answer or a failure means.

    ``command`` (set by the window) is the request's command_id: only a response of that kind
    (or a generic_nack) resolves it."""

    __slots__ = ("command", "deadline")

    def resolve(self, status: int, message_id: str, pdu: codec.Pdu | None) -> None:
        raise NotImplementedError

    def fail(self, code: int) -> None:
        raise NotImplementedError


class FutureEntry(Pending):
    """A request whose caller awaits the response PDU (tools, tests, bind and unbind)."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future):
        self.future = future

    def resolve(self, status: int, message_id: str, pdu: codec.Pdu | None) -> None:
        if not self.future.done():
            if pdu is None:  # the fast path read only the status and message id of a submit_sm_resp
                pdu = codec.Pdu(self.command | RESPONSE_BIT, 0, status, {"message_id": message_id})
            self.future.set_result(pdu)

    def fail(self, code: int) -> None:
        if not self.future.done():
            if code == RESPONSE_TIMEOUT:
                self.future.set_exception(ResponseTimeout("no response in time"))
            else:
                self.future.set_exception(LinkDown("link lost before the response"))


def guarded(label: str, fn, *args) -> None:
    """Call an entry's handler; a failure in it is logged, never raised into the read path."""
    try:
        fn(*args)
    except Exception:
        log.exception("smpp response handler failed", session=label)


class RequestWindow:
    __slots__ = ("_seq", "entries")

    def __init__(self) -> None:
        self.entries: dict[int, Pending] = {}  # by sequence number, oldest first
        self._seq = 0

    def __len__(self) -> int:
        return len(self.entries)

    def next_seq(self) -> int:
        seq = self._seq + 1 if self._seq < _MAX_SEQ else 1
        while seq in self.entries:  # only after 2**31 requests with one still unanswered
            seq = seq + 1 if seq < _MAX_SEQ else 1
        self._seq = seq
        return seq

    def add(self, command_id: int, entry: Pending, deadline: float) -> int:
        """Register ``entry`` for a request about to be written; returns its sequence number."""
        seq = self.next_seq()
        entry.command = command_id
        entry.deadline = deadline
        self.entries[seq] = entry
        return seq

    def take(self, seq: int, response_id: int) -> Pending | None:
        """The entry this response answers (its own kind, or a generic_nack), removed; else None."""
        entry = self.entries.get(seq)
        if entry is None or (response_id != entry.command | RESPONSE_BIT and response_id != _GENERIC_NACK):
            return None
        del self.entries[seq]
        return entry

    def expired(self, now: float) -> list[Pending]:
        """Remove and return the entries whose deadline has passed."""
        entries = self.entries
        late = []
        for seq, entry in entries.items():
            if entry.deadline > now:
                break
            late.append(seq)
        return [entries.pop(seq) for seq in late]

    def clear(self) -> list[Pending]:
        """Remove and return every entry (the link is gone)."""
        entries, self.entries = self.entries, {}
        return list(entries.values())
