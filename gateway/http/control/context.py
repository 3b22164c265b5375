"""What the control room's handlers share: the services they call, and problems answered here."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.services.citizen_data import CitizenData
from gateway.services.operator_actions import OperatorActions
from gateway.store.db import Database

from ..operators.context import SESSION
from ..operators.web import Handler
from ..problems import Problem


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


def by(request: web.Request) -> str:
    """Who acts, as the services log it."""
    return f"operator:{request[SESSION].operator.username}"
