"""An endpoint declared once: its route and its OpenAPI operation, with the pydantic models of what
it reads and answers.

Each HTTP module lists its endpoints as :class:`Operation` values; the applications add their
routes from those lists (:func:`add_routes`) and gateway/http/api/openapi.py generates the document
from the same lists, so a route cannot go undescribed and a model cannot differ from its schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from .problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from .problems import Problem, ProblemDetails

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Security = tuple[Mapping[str, list[str]], ...]

SIGNED: Security = ({"client": [], "signature": []},)  # a CRM's signed request
OPERATOR: Security = ({"operator": []},)  # an operator's session cookie
PUBLIC: Security = ()
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Header:
    """A response header the document describes."""

    name: str
    description: str
    schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """One response of an operation: a body described by a model, a media type, or nothing."""

    description: str
    model: type[BaseModel] | None = None
    media_type: str | None = None
    headers: tuple[Header, ...] = ()


def answer(model: type[BaseModel], description: str) -> Reply:
    return Reply(description, model, JSON)


def problem(description: str, headers: tuple[Header, ...] = ()) -> Reply:
    return Reply(description, ProblemDetails, PROBLEM_MEDIA_TYPE, headers)


def content(media_type: str, description: str) -> Reply:
    """A body that is not JSON (an HTML page, an event stream, Prometheus text)."""
    return Reply(description, None, media_type)


def no_body(description: str) -> Reply:
    return Reply(description)


@dataclass(frozen=True, slots=True)
class PathParameter:
    name: str
    schema: Mapping[str, Any]
    description: str | None = None


MAX_ID = 2**31 - 1
ID = PathParameter("id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})


def path_id(request: web.Request, noun: str) -> int:
    """The ``{id}`` of the path (:data:`ID`); anything but an id in range is a 404 naming ``id``."""
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_ID):
        raise Problem(404, "Not found", f"no {noun} {raw!r}", [("id", f"must be a {noun} id (an integer)")])
    return int(raw)


@dataclass(frozen=True, slots=True)
class Operation:
    method: str  # GET, POST, DELETE…
    path: str  # as served, mounts included: /dashboard/login
    handler: Handler
    operation_id: str
    summary: str
    responses: Mapping[str, Reply]  # by status code
    description: str | None = None
    security: Security = SIGNED
    path_parameters: tuple[PathParameter, ...] = ()
    query: type[BaseModel] | None = None  # the query string, validated by this model
    body: type[BaseModel] | Mapping[str, Any] | None = None  # a JSON body: its model, or a schema
    body_required: bool = True
    name: str | None = None  # the route's name in its application

    @property
    def key(self) -> tuple[str, str]:
        return self.method.lower(), self.path


def add_routes(app: web.Application, operations: Iterable[Operation], mount: str = "") -> None:
    """The routes of ``operations`` on ``app``, mounted at ``mount`` (their paths start with it).

    A GET also answers HEAD, as aiohttp's ``add_get`` does."""
    for op in operations:
        if not op.path.startswith(mount):
            raise ValueError(f"{op.path} is not under {mount}")
        path = op.path[len(mount) :]
        if op.method == "GET":
            app.router.add_get(path, op.handler, name=op.name)
        else:
            app.router.add_route(op.method, path, op.handler, name=op.name)
