"""The control room: what an operator searches, reads and does from the dashboard.

Search messages (folio, number in any Mexican form, status, time range) and read one message's
story; retry or cancel a message, cancel a broadcast, pause and resume a carrier; the broadcasts'
progress and reach by colonia. Actions go through :class:`OperatorActions`, the service the CRM
API calls; they need the role ``operator`` and the session's CSRF token (the middlewares), and
each one is written to the audit log, as is every search by number (its answers show whole
numbers). One module per view: ``messages``, ``broadcasts``, ``carriers``, ``citizens``;
``context`` holds what they share.
"""

from __future__ import annotations

from ..operations import Operation
from . import broadcasts, carriers, citizens, messages
from .context import CONTROL, ControlRoom, answers_problems

__all__ = ["CONTROL", "ControlRoom", "answers_problems", "operations"]


def operations(mount: str) -> tuple[Operation, ...]:
    """Every endpoint of the control room, mounted at ``mount`` (the dashboard's)."""
    return (
        *messages.operations(mount),
        *broadcasts.operations(mount),
        *carriers.operations(mount),
        *citizens.operations(mount),
    )
