"""The control room's carriers: which are paused, and an operator's pause and resume (a row every
gateway process reads: its messages wait in the outbox while it is paused)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from gateway.domain.operators import Role
from gateway.services.operator_actions import UnknownCarrier
from gateway.store import carrier_pauses

from ..operations import OPERATOR, Operation, PathParameter, answer, problem
from ..operators.context import SESSION, audit
from ..operators.web import Handler, requires
from ..problems import Problem
from ..responses import Answer, UtcTime, model_response
from .context import CONTROL, answers_problems

CARRIER = PathParameter("name", {"type": "string", "maxLength": 32}, "the carrier's name as configured")


class CarrierPause(Answer):
    carrier: str
    paused: bool = Field(description="its state now")
    changed: bool = Field(description="false: it was already so")


def _carrier_action(pausing: bool) -> Handler:
    @requires(Role.OPERATOR)
    @answers_problems
    async def act(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        actions = request.config_dict[CONTROL].actions
        try:
            by = request[SESSION].operator.username
            if pausing:
                changed = await actions.pause_carrier(name, by=by)
            else:
                changed = await actions.resume_carrier(name, by=by)
        except UnknownCarrier as exc:
            raise Problem(404, "Not found", str(exc), [("name", str(exc))]) from None
        if changed:
            await audit(request, "carrier.pause" if pausing else "carrier.resume", f"carrier:{name}")
        return model_response(CarrierPause(carrier=name, paused=pausing, changed=changed))

    return act


# --- carriers ------------------------------------------------------------------------------------


class CarrierState(Answer):
    carrier: str
    paused: bool
    paused_by: str | None
    paused_at: UtcTime | None


def carrier_states(carriers: tuple[str, ...], pauses: list[dict]) -> list[CarrierState]:
    by_name = {p["carrier"]: p for p in pauses}
    return [
        CarrierState(
            carrier=name,
            paused=name in by_name,
            paused_by=by_name.get(name, {}).get("paused_by"),
            paused_at=by_name.get(name, {}).get("paused_at"),
        )
        for name in carriers
    ]


async def list_carriers(request: web.Request) -> web.Response:
    control = request.config_dict[CONTROL]
    pauses = await control.db.run(carrier_pauses.listing)
    return model_response(CarrierList(items=carrier_states(control.actions.carriers, pauses)))


class CarrierList(Answer):
    items: list[CarrierState]


def operations(mount: str) -> tuple[Operation, ...]:
    unauthenticated = problem("No operator session")
    forbidden = problem("The operator's role is viewer: they cannot act")
    return (
        Operation(
            "GET",
            f"{mount}/carriers",
            list_carriers,
            "controlCarriers",
            "The configured carriers and which are paused",
            {"200": answer(CarrierList, "carriers"), "401": unauthenticated},
            security=OPERATOR,
        ),
        Operation(
            "POST",
            f"{mount}/carriers/{{name}}/pause",
            _carrier_action(True),
            "controlPauseCarrier",
            "Pause a carrier: its messages wait in the outbox, in every gateway process (operators; audited)",
            {"200": answer(CarrierPause, "paused"), "403": forbidden, "404": problem("No such carrier")},
            security=OPERATOR,
            path_parameters=(CARRIER,),
        ),
        Operation(
            "POST",
            f"{mount}/carriers/{{name}}/resume",
            _carrier_action(False),
            "controlResumeCarrier",
            "Resume a paused carrier (operators; audited)",
            {"200": answer(CarrierPause, "resumed"), "403": forbidden, "404": problem("No such carrier")},
            security=OPERATOR,
            path_parameters=(CARRIER,),
        ),
    )
