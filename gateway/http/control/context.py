"""What the control room's handlers share: the services they call, and problems answered here."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.services.citizen_data import CitizenData
from gateway.services.operator_actions import NotAllowed, OperatorActions
from gateway.store.db import Database

from ..operations import path_id
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


Action = Callable[..., Awaitable[dict | None]]


async def act(request: web.Request, noun: str, action: Action, refused: str, slug: str) -> tuple[int, dict]:
    """Run an operator action on the ``{id}`` of the path: (id, the action's result). An action the
    resource's state does not allow is a 409 titled ``refused``; an unknown id a 404."""
    wanted = path_id(request, noun)
    try:
        result = await action(wanted, client_id=None, by=by(request))
    except NotAllowed as exc:
        raise Problem(409, refused, str(exc), [("id", str(exc))], slug=slug) from None
    if result is None:
        raise Problem(404, "Not found", f"no {noun} {wanted}")
    return wanted, result
