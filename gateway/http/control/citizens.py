"""The control room's citizens: the latest SMS they sent with what each was understood as (numbers
masked, no text), one number's consent ledger (audited: it shows the whole number and what the
citizen wrote), and for admins a number's export and, confirmed by typing the number again, its
forget (gateway/services/citizen_data.py, what ``smsgw citizens`` calls).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.domain.operators import Role
from gateway.domain.phone import MSISDN_SCHEMA, InvalidNumber, mask_msisdn, normalize_msisdn
from gateway.store import reads

from ..bodies import check_media_type, parse_json, read_body
from ..operations import JSON, OPERATOR, Operation, answer, content, problem
from ..operators.context import audit
from ..operators.web import requires
from ..problems import Problem
from ..query import parse_query
from ..responses import Answer, UtcTime, json_response, model_response
from .context import CONTROL, answers_problems

INBOUND_SHOWN = 50
MAX_BODY = 1024


async def _json(request: web.Request) -> object:
    check_media_type(request)
    return parse_json(await read_body(request, MAX_BODY))


class Inbound(Answer):
    id: int
    sender: str = Field(description="masked")
    carrier: str | None
    received_at: UtcTime
    keyword: str | None
    intent: str = Field(description="subscribe, unsubscribe, help, status, confirm, decline or unknown")
    language: str | None
    understood: dict | None = Field(description="topic, zones, folio, choices…")
    outcome: str
    reply_kind: str | None = Field(description="the reply's template")


class InboundList(Answer):
    items: list[Inbound]


async def inbound(request: web.Request) -> web.Response:
    rows = await request.config_dict[CONTROL].db.run(reads.recent_inbound, INBOUND_SHOWN)
    items = [Inbound(sender=mask_msisdn(r.pop("msisdn")), **r) for r in rows]
    return model_response(InboundList(items=items))


def _number(value: str) -> str:
    try:
        return normalize_msisdn(value)
    except InvalidNumber as exc:
        raise ValueError(str(exc)) from None


class NumberQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    msisdn: str = Field(json_schema_extra={**MSISDN_SCHEMA, "description": "the citizen's number, any form"})

    @field_validator("msisdn")
    @classmethod
    def _normal(cls, value: str) -> str:
        return _number(value)


class Subscription(Answer):
    topic: str
    zone: str | None = Field(description="the colonia; null: every colonia")


class ConsentEntry(Answer):
    at: UtcTime
    action: str
    channel: str = Field(description="sms, api, import or cli")
    client_id: str | None
    carrier: str | None
    topics: list[str] | None
    zones: list[str] | None
    raw: str | None = Field(description="the SMS, request or CSV row (erased by a forget)")


class Ledger(Answer):
    number: str = Field(description="the whole number (the view is audited)")
    language: str
    opted_out: bool
    opted_out_at: UtcTime | None
    created_at: UtcTime
    subscriptions: list[Subscription]
    ledger: list[ConsentEntry]


@answers_problems
async def ledger(request: web.Request) -> web.Response:
    query = parse_query(NumberQuery, request.query, status=422)
    found = await request.config_dict[CONTROL].db.run(reads.consent_ledger, query.msisdn)
    await audit(request, "citizen.view_ledger", f"msisdn:{query.msisdn}", {"found": found is not None})
    if found is None:
        raise Problem(404, "Not found", "the gateway holds nothing about this number")
    return model_response(
        Ledger(
            number=found["msisdn"],
            language=found["language"],
            opted_out=found["opted_out"],
            opted_out_at=found["opted_out_at"],
            created_at=found["created_at"],
            subscriptions=found["subscriptions"],
            ledger=found["ledger"],
        )
    )


class ForgetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    msisdn: str
    confirm: str = Field(description="the same number typed again")

    @field_validator("msisdn", "confirm")
    @classmethod
    def _normal(cls, value: str) -> str:
        return _number(value)


class ExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    msisdn: str

    @field_validator("msisdn")
    @classmethod
    def _normal(cls, value: str) -> str:
        return _number(value)


def _body(model: type[BaseModel], data: object) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [(".".join(str(p) for p in e["loc"]) or "body", e["msg"].removeprefix("Value error, "))
                  for e in exc.errors(include_url=False)]  # fmt: skip
        raise Problem(422, "Invalid request", "; ".join(f"{n}: {r}" for n, r in errors), errors) from None


@requires(Role.ADMIN)
@answers_problems
async def export(request: web.Request) -> web.Response:
    body = _body(ExportBody, await _json(request))
    control = request.config_dict[CONTROL]
    msisdn, data = await control.db.run(control.citizens.export, body.msisdn)
    await audit(request, "citizen.export", f"msisdn:{msisdn}", {"found": data is not None})
    if data is None:
        raise Problem(404, "Not found", "the gateway holds nothing about this number")
    return json_response({"msisdn": msisdn, **data})


@requires(Role.ADMIN)
@answers_problems
async def forget(request: web.Request) -> web.Response:
    body = _body(ForgetBody, await _json(request))
    if body.confirm != body.msisdn:
        reason = "type the same number again to confirm"
        raise Problem(422, "Not confirmed", reason, [("confirm", reason)], slug="not-confirmed")
    control = request.config_dict[CONTROL]
    msisdn, result = await control.db.run(control.citizens.forget, body.msisdn)
    control.actions.on_change()
    await audit(request, "citizen.forget", f"msisdn:{mask_msisdn(msisdn)}", {"erased": result["erased"]})
    return json_response(result)


def operations(mount: str) -> tuple[Operation, ...]:
    unauthenticated = problem("No operator session")
    admins = problem("Not an admin, or a missing or wrong CSRF token")
    return (
        Operation(
            "GET",
            f"{mount}/citizens/inbound",
            inbound,
            "controlInbound",
            f"The latest {INBOUND_SHOWN} citizens' SMS with what each was understood as (masked, no text)",
            {"200": answer(InboundList, "newest first"), "401": unauthenticated},
            security=OPERATOR,
        ),
        Operation(
            "GET",
            f"{mount}/citizens/ledger",
            ledger,
            "controlLedger",
            "One number's subscriptions and consent ledger (audited)",
            {
                "200": answer(Ledger, "the ledger"),
                "401": unauthenticated,
                "404": problem("Nothing held about the number"),
                "422": problem("Not a number"),
            },
            security=OPERATOR,
            query=NumberQuery,
        ),
        Operation(
            "POST",
            f"{mount}/citizens/export",
            export,
            "controlExport",
            "Everything held about a number, as `smsgw citizens export` (admins; audited)",
            {
                "200": content(JSON, "everything held, as the command prints it"),
                "403": admins,
                "404": problem("Nothing held about the number"),
                "422": problem("Not a number"),
            },
            security=OPERATOR,
            body=ExportBody,
        ),
        Operation(
            "POST",
            f"{mount}/citizens/forget",
            forget,
            "controlForget",
            "Erase a number's personal data and keep it opted out, as `smsgw citizens forget` "
            "(admins; `confirm` repeats the number; audited)",
            {
                "200": content(JSON, "what was erased and what was kept, and why"),
                "403": admins,
                "422": problem("Not a number, or not confirmed"),
            },
            security=OPERATOR,
            body=ForgetBody,
        ),
    )
