"""The control room's broadcasts: each one's progress (a bar of its messages by where they are),
its reach by colonia, and an operator's cancel (through OperatorActions, as the CRM API)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from gateway.domain.operators import Role
from gateway.store import reads

from ..api.schemas import BroadcastType, CancelResult, PriorityName, Topic, priority_name
from ..operations import ID, OPERATOR, Operation, answer, path_id, problem
from ..operators.context import audit
from ..operators.web import requires
from ..problems import Problem
from ..responses import Answer, UtcTime, model_response
from .context import CONTROL, act, answers_problems

BROADCASTS_SHOWN = 10


@requires(Role.OPERATOR)
@answers_problems
async def cancel_broadcast(request: web.Request) -> web.Response:
    actions = request.config_dict[CONTROL].actions
    wanted, result = await act(
        request, "broadcast", actions.cancel_broadcast, "Cannot cancel", "not-cancellable"
    )
    detail = {"was": result["previous_status"], "cancelled": result["cancelled"]}
    await audit(request, "broadcast.cancel", f"broadcast:{wanted}", detail)
    return model_response(
        CancelResult(
            id=wanted,
            status="cancelled",
            previous_status=result["previous_status"],
            cancelled=result["cancelled"],
        )
    )


# --- broadcasts ----------------------------------------------------------------------------------


class Progress(Answer):
    """A broadcast's messages by where they are; pending: recipients not fanned out yet."""

    pending: int
    queued: int = Field(description="queued or held")
    submitted: int
    delivered: int
    failed: int = Field(description="failed, undeliverable or rejected")
    expired: int
    cancelled: int


_BUCKETS = {
    "queued": "queued",
    "held": "queued",
    "submitted": "submitted",
    "delivered": "delivered",
    "failed": "failed",
    "undeliverable": "failed",
    "rejected": "failed",
    "expired": "expired",
    "cancelled": "cancelled",
}


def progress(recipients: int, by_status: dict[str, int]) -> Progress:
    buckets = dict.fromkeys(("queued", "submitted", "delivered", "failed", "expired", "cancelled"), 0)
    for status, count in by_status.items():
        buckets[_BUCKETS[status]] += count
    return Progress(pending=max(0, recipients - sum(by_status.values())), **buckets)


class BroadcastProgress(Answer):
    id: int
    event_id: str
    type: BroadcastType
    topic: Topic
    priority: PriorityName
    status: str = Field(description="pending, running, done, cancelled or expired")
    recipients: int
    segments: int = Field(description="SMS segments of its messages so far")
    progress: Progress
    created_at: UtcTime
    finished_at: UtcTime | None


class BroadcastList(Answer):
    items: list[BroadcastProgress]


def broadcast_progress(row: dict) -> BroadcastProgress:
    return BroadcastProgress(
        id=row["id"],
        event_id=row["event_key"],
        type=row["type"],
        topic=row["topic"],
        priority=priority_name(row["priority"]),
        status=row["status"],
        recipients=row["recipients"],
        segments=row["segments"],
        progress=progress(row["recipients"], row["messages"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


async def list_broadcasts(request: web.Request) -> web.Response:
    rows = await request.config_dict[CONTROL].db.run(reads.recent_broadcasts, BROADCASTS_SHOWN)
    return model_response(BroadcastList(items=[broadcast_progress(r) for r in rows]))


class ZoneReach(Answer):
    zone: str | None = Field(description="the colonia; null: every colonia")
    delivered: int
    failed: int = Field(description="failed, undeliverable, rejected or expired")
    pending: int = Field(description="queued, held or submitted")
    cancelled: int


class Reach(Answer):
    id: int
    zones: list[ZoneReach] = Field(description="by colonia name; every colonia last")


_REACH = {
    "delivered": "delivered",
    "queued": "pending",
    "held": "pending",
    "submitted": "pending",
    "cancelled": "cancelled",
}


@answers_problems
async def reach(request: web.Request) -> web.Response:
    wanted = path_id(request, "broadcast")
    db = request.config_dict[CONTROL].db
    if not await db.run(reads.broadcast_exists, wanted):
        raise Problem(404, "Not found", f"no broadcast {wanted}")
    zones: dict[str | None, dict[str, int]] = {}
    for zone, status, count in await db.run(reads.broadcast_reach, wanted):
        counts = zones.setdefault(zone, dict.fromkeys(("delivered", "failed", "pending", "cancelled"), 0))
        counts[_REACH.get(status, "failed")] += count
    ordered = sorted(zones.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return model_response(Reach(id=wanted, zones=[ZoneReach(zone=z, **c) for z, c in ordered]))


def operations(mount: str) -> tuple[Operation, ...]:
    unauthenticated = problem("No operator session")
    csrf = problem("Missing or wrong CSRF token, or the role does not allow it")
    return (
        Operation(
            "GET",
            f"{mount}/broadcasts",
            list_broadcasts,
            "controlBroadcasts",
            f"The latest {BROADCASTS_SHOWN} broadcasts with their progress, newest first",
            {"200": answer(BroadcastList, "broadcasts"), "401": unauthenticated},
            security=OPERATOR,
        ),
        Operation(
            "GET",
            f"{mount}/broadcasts/{{id}}/reach",
            reach,
            "controlReach",
            "A broadcast's messages by colonia: delivered, failed, pending",
            {"200": answer(Reach, "by colonia"), "401": unauthenticated, "404": problem("No such broadcast")},
            security=OPERATOR,
            path_parameters=(ID,),
        ),
        Operation(
            "POST",
            f"{mount}/broadcasts/{{id}}/cancel",
            cancel_broadcast,
            "controlCancelBroadcast",
            "Cancel a broadcast: its queued and held messages become cancelled (operators; audited)",
            {
                "200": answer(CancelResult, "cancelled"),
                "403": csrf,
                "404": problem("No such broadcast"),
                "409": problem("The broadcast is finished or already cancelled; nothing changed"),
            },
            security=OPERATOR,
            path_parameters=(ID,),
        ),
    )
