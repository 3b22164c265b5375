"""GET / POST / DELETE /api/v1/subscriptions: a CRM manages a citizen's alerts on their behalf.

The requests are :mod:`gateway.domain.subscriptions`' models and the work is the subscription
service's (gateway/services/subscriptions.py), so the rules are the SMS keywords': topics AGUA,
VIAL, EMERGENCIA, AVISOS (none = every topic); zones by colonia name or postal code (none = every
zone), a name that means several colonias refused naming the choices; DELETE without a topic is
the opt-out (subscriptions removed, waiting messages cancelled, nothing more sent). A citizen who
opted out is subscribed again only with ``"consent": "explicit"`` (the CRM states the citizen asked
for it); otherwise 409. Every change is in the consent ledger with channel ``api``, the client id
and the request. No SMS is sent by these endpoints. Errors are problem+json naming the field at
fault (400 without a number, for a body that is no JSON object and for unknown query parameters;
422 for the rest); nothing is written on any.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import parse_qs

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from gateway import clock
from gateway.domain.fields import field_errors
from gateway.domain.subscriptions import (
    SubscriptionRequest,
    Subscriptions,
    SubscriptionsQuery,
    UnsubscribeQuery,
    UnsubscribeRequest,
)
from gateway.http.authentication import BODY, CLIENT_ID
from gateway.http.bodies import read_json
from gateway.http.deps import DEPS
from gateway.http.operations import Operation, answer, problem
from gateway.http.problems import Problem
from gateway.http.responses import json_response
from gateway.services.subscriptions import ConsentRequired, Origin, SubscriptionService
from gateway.store import consent

from .errors import errors

_NUMBER_REQUIRED = "required: the citizen's number, any common Mexican form"
M = TypeVar("M", bound=BaseModel)


def _invalid(errors: list[tuple[str, str]], status: int = 422) -> Problem:
    detail = "; ".join(f"{name}: {reason}" for name, reason in errors)
    return Problem(status, "Invalid request", detail, errors, slug="invalid-request")


def _fields(model: type[BaseModel]) -> str:
    return ", ".join(sorted(model.model_fields))


def _validated(service: SubscriptionService, model: type[M], data: object, *, query: bool = False) -> M:
    """``model`` from a JSON body or a query string; a Problem naming every field at fault."""
    try:
        return service.catalogue.validate(model, data)
    except ValidationError as exc:
        errors, status = [], 422
        for err, (name, reason) in zip(exc.errors(), field_errors(exc), strict=True):
            if err["type"] == "extra_forbidden":
                what = "query parameter" if query else "field"
                reason = f"unknown {what}; expected {_fields(model)}"
                status = 400 if query else status
            elif name == "msisdn" and (err["type"] == "missing" or err.get("input") in (None, "")):
                reason, status = _NUMBER_REQUIRED, 400
            errors.append((name, reason))
        raise _invalid(errors, status) from None


def _json_object(request: web.Request) -> dict:
    data = read_json(request)
    if not isinstance(data, dict):
        raise Problem(
            400,
            "Malformed JSON",
            "the body must be a JSON object",
            [("body", "must be a JSON object")],
            slug="malformed-json",
        )
    return data


async def list_subscriptions(request: web.Request) -> web.Response:
    ctx = request.app[DEPS]
    query = _validated(ctx.subscriptions, SubscriptionsQuery, dict(request.query), query=True)
    view = await ctx.db.run(ctx.subscriptions.view, query.msisdn)
    return json_response(view.body())


async def post_subscription(request: web.Request) -> web.Response:
    ctx = request.app[DEPS]
    service = ctx.subscriptions
    wanted = _validated(service, SubscriptionRequest, _json_object(request))
    origin = Origin(consent.API, request[BODY].decode("utf-8", "replace"), client_id=request[CLIENT_ID])

    def work(conn: Connection):
        now = clock.utcnow()
        citizen = service.citizen(conn, wanted.msisdn, wanted.language or "es", now)
        try:
            done = service.subscribe(
                conn,
                citizen,
                wanted.topics,
                service.catalogue.zones_of(wanted.zones),
                origin,
                now,
                explicit=wanted.consent == "explicit",
                language=wanted.language,
            )
        except ConsentRequired:
            raise Problem(
                409,
                "Citizen opted out",
                "this number opted out of every message; subscribe it again only when the citizen "
                'asked for it, with "consent": "explicit"',
                [("consent", 'required ("explicit") for a citizen who opted out')],
                slug="opted-out",
            ) from None
        return service.view(conn, wanted.msisdn, added=done.added, opted_in=done.opted_in)

    view = await ctx.db.run(work)
    return json_response(view.body(), 201 if view.added else 200)


async def delete_subscription(request: web.Request) -> web.Response:
    ctx = request.app[DEPS]
    service = ctx.subscriptions
    body = request[BODY]
    if body.strip():
        wanted = _validated(service, UnsubscribeRequest, _json_object(request))
        raw = body.decode("utf-8", "replace")
    else:
        query = {k: v[-1] for k, v in parse_qs(request.query_string).items()}
        wanted = _validated(service, UnsubscribeQuery, query, query=True)
        raw = request.query_string
    origin = Origin(consent.API, raw, client_id=request[CLIENT_ID])

    def work(conn: Connection):
        now = clock.utcnow()
        if wanted.topic is not None:
            citizen = service.find(conn, wanted.msisdn)
            removed = service.unsubscribe(conn, citizen, wanted.topic, origin, now) if citizen else 0
            return service.view(conn, wanted.msisdn, removed=removed, cancelled=0)
        citizen = service.citizen(conn, wanted.msisdn, "es", now)  # an unknown number is kept, opted out
        stopped = service.opt_out(conn, citizen, origin, now)
        return service.view(
            conn, wanted.msisdn, removed=stopped.subscriptions_removed, cancelled=len(stopped.cancelled)
        )

    view = await ctx.db.run(work)
    if view.cancelled and ctx.callbacks.enabled:
        ctx.signals.callbacks.announce()  # the CRMs learn their messages were cancelled
    return json_response(view.body())


_REFUSED = "A field is invalid (unknown or ambiguous zone, topic, number, language); `field` names it"
_BAD_REQUEST = (
    "No number, an unknown query parameter, or a body that is no JSON object (or nests too deep, or "
    "has a too long number); `field` names it"
)

OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/subscriptions",
        list_subscriptions,
        "listSubscriptions",
        "A citizen's subscriptions and opt-out state",
        {
            "200": answer(Subscriptions, "The citizen's subscriptions (empty for an unknown number)"),
            "400": problem(_BAD_REQUEST),
            "422": problem("msisdn is not a Mexican mobile number"),
            **errors("401", "500"),
        },
        query=SubscriptionsQuery,
    ),
    Operation(
        "POST",
        "/api/v1/subscriptions",
        post_subscription,
        "subscribe",
        "Subscribe a citizen to a topic (or every topic) in zones (or every zone)",
        {
            "201": answer(Subscriptions, "Subscribed"),
            "200": answer(Subscriptions, "Nothing to add: already subscribed"),
            "400": problem(_BAD_REQUEST),
            "409": problem('The citizen opted out and `consent` is not "explicit"'),
            "422": problem(_REFUSED),
            **errors("401", "413", "415", "500"),
        },
        description=(
            "Same rules as the SMS keyword ALTA. A citizen who opted out is subscribed again only with "
            '`"consent": "explicit"` (409 otherwise). Recorded in the consent ledger (channel api). '
            "No SMS is sent. 201 when something was added, 200 when everything was already there."
        ),
        body=SubscriptionRequest,
    ),
    Operation(
        "DELETE",
        "/api/v1/subscriptions",
        delete_subscription,
        "unsubscribe",
        "Unsubscribe a citizen from a topic, or from everything (opt-out)",
        {
            "200": answer(Subscriptions, "Unsubscribed (removed / cancelled say what changed)"),
            "400": problem(_BAD_REQUEST),
            "422": problem(_REFUSED),
            **errors("401", "413", "415", "500"),
        },
        description=(
            "`msisdn` and `topic` in the query string or in a JSON body. Without a topic this is the "
            "opt-out: every subscription removed, messages still waiting cancelled, nothing more sent "
            "(an unknown number is recorded as opted out). Recorded in the consent ledger (channel api)."
        ),
        query=UnsubscribeQuery,
        body=UnsubscribeRequest,
        body_required=False,
    ),
)
