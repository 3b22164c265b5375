"""GET /metrics: Prometheus text format (0.0.4), written by hand (no client library needed).

Per carrier and bind: link state, window in use, submits (total and the last ten seconds' rate),
throttles, the speed limit in force, errors by SMPP status, timeouts and reconnections; receipt
latency (a histogram per carrier) and counts; MO; the status writer's backlog; the outbox depth by
status (one GROUP BY, cached a few seconds so a busy scraper cannot load the database).

The composition root gives the handler a :class:`MetricsSources` with the parts its role runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.store import reads
from gateway.store.db import Database
from smpp_client.errors import error_name
from smpp_client.metrics import Exposition

from ..deps import OPS
from ..operations import PUBLIC, Operation, content

if TYPE_CHECKING:
    from gateway.http.client_limits import ClientLimits
    from gateway.services.citizen_sms import CitizenInbox
    from gateway.services.link_events import LinkEventHandler
    from gateway.store.status_writer import StatusWriter
    from scheduler.cluster import Membership
    from scheduler.dispatcher import Dispatcher
    from smpp_client.pool import CarrierPool

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OUTBOX_CACHE_SECONDS = 5.0


class OutboxDepth:
    """The outbox by status, read at most once per ``OUTBOX_CACHE_SECONDS``."""

    def __init__(self) -> None:
        self._read_at = 0.0
        self._depth: dict[str, int] = {}

    async def read(self, db: Database) -> dict[str, int]:
        if time.monotonic() - self._read_at > OUTBOX_CACHE_SECONDS:
            try:
                self._depth = await db.run(reads.outbox_depth)
                self._read_at = time.monotonic()
            except Exception:
                return {}
        return self._depth


@dataclass
class MetricsSources:
    pool: CarrierPool | None = None
    writer: StatusWriter | None = None
    dispatcher: Dispatcher | None = None
    link_events: LinkEventHandler | None = None
    citizens: CitizenInbox | None = None  # citizens' messages handled, by outcome
    membership: Membership | None = None  # several dispatch processes: members, takeovers
    limits: ClientLimits | None = None  # the CRM clients' requests refused beyond their limits
    outbox: OutboxDepth = field(default_factory=OutboxDepth)


SILENT_FAILURES = (
    "receipts_unparsed",
    "receipts_unknown",
    "receipts_duplicate",
    "receipts_ambiguous",
    "status_changes_set_aside",
    "bad_message_ids",
    "unexpected_pdus",
    "mo_refused",
)


def silent_failures(sources: MetricsSources) -> dict[str, int]:
    """What went wrong and was counted rather than stopping anything, in this process since it
    started (the same counters as /metrics); empty without links (the ``api`` role)."""
    pool, writer = sources.pool, sources.writer
    if pool is None or writer is None:
        return {}
    carriers = pool.status()
    return {
        "receipts_unparsed": pool.inbound.receipts_unparsed,
        "receipts_unknown": sum(writer.receipts_unknown.values()),
        "receipts_duplicate": sum(writer.receipts_final_only.values()),
        "receipts_ambiguous": sum(writer.receipts_ambiguous.values()),
        "status_changes_set_aside": sum(writer.set_aside.values()),
        "bad_message_ids": sum(c["bad_message_ids"] for c in carriers),
        "unexpected_pdus": sum(n for c in carriers for b in c["binds"] for n in b["unexpected"].values()),
        "mo_refused": pool.inbound.mo_refused,
    }


def render(sources: MetricsSources, outbox: dict[str, int] | None = None) -> str:
    out = Exposition()
    pool = sources.pool
    if pool is not None:
        inbound = pool.inbound
        out.add("smsgw_mo_parts_total", "counter", "MO deliver_sm received", inbound.mo_parts)
        out.add(
            "smsgw_mo_refused_total", "counter", "MO refused (impossible sender address)", inbound.mo_refused
        )
        out.add(
            "smsgw_receipts_unparsed_total",
            "counter",
            "receipts without a readable id or state (acknowledged)",
            inbound.receipts_unparsed,
        )
        for c in pool.status():
            lc = {"carrier": c["carrier"]}
            out.add(
                "smsgw_smpp_rate_limit", "gauge", "configured speed limit (segments/s)", c["rate_limit"], lc
            )
            out.add(
                "smsgw_smpp_binds_held",
                "gauge",
                "binds of the carrier this process holds (its share when several processes run)",
                c["binds_held"],
                lc,
            )
            out.add(
                "smsgw_smpp_rate_allowed",
                "gauge",
                "speed limit in force after throttling (AIMD)",
                c["rate"],
                lc,
            )
            out.add("smsgw_smpp_paused", "gauge", "1 while sending pauses after a throttle", c["paused"], lc)
            out.add(
                "smsgw_smpp_throttles_total",
                "counter",
                "ESME_RTHROTTLED and ESME_RMSGQFUL answers",
                c["throttles"],
                lc,
            )
            out.add(
                "smsgw_smpp_rate_decreases_total",
                "counter",
                "rate decreases (throttle episodes)",
                c["rate_decreases"],
                lc,
            )
            out.add("smsgw_smpp_parts_sent_total", "counter", "submit_sm sent", c["parts_sent"], lc)
            out.add(
                "smsgw_smpp_parts_accepted_total",
                "counter",
                "submit_sm answered ESME_ROK",
                c["parts_accepted"],
                lc,
            )
            out.add(
                "smsgw_smpp_messages_submitted_total",
                "counter",
                "messages with every part accepted",
                c["messages_submitted"],
                lc,
            )
            out.add(
                "smsgw_smpp_submit_rate",
                "gauge",
                "submit_sm per second over the last 10 s",
                c["submit_rate"],
                lc,
            )
            out.add(
                "smsgw_smpp_queued",
                "gauge",
                "messages waiting for a window slot or the speed limit",
                c["queued"],
                lc,
            )
            out.add(
                "smsgw_smpp_in_memory",
                "gauge",
                "messages of this carrier between claim and outcome",
                c["in_memory"],
                lc,
            )
            out.add(
                "smsgw_smpp_failovers_total",
                "counter",
                "messages passed to the next carrier",
                c["failovers"],
                lc,
            )
            out.add(
                "smsgw_smpp_bad_message_ids_total",
                "counter",
                "ESME_ROK answers with a message id that cannot be used (the submit failed on this carrier)",
                c["bad_message_ids"],
                lc,
            )
            for code, count in sorted(c["errors"].items()):
                out.add(
                    "smsgw_smpp_submit_errors_total",
                    "counter",
                    "submit_sm failures by SMPP status (negative: link lost, timeout)",
                    count,
                    {**lc, "code": str(code), "name": error_name(code)},
                )
            for b in c["binds"]:
                lb = {**lc, "bind": b["bind"], "kind": b["kind"]}
                out.add("smsgw_smpp_bind_up", "gauge", "1 when the bind is bound", b["bound"], lb)
                out.add(
                    "smsgw_smpp_window_in_use",
                    "gauge",
                    "submit_sm awaiting their response",
                    b["in_flight"],
                    lb,
                )
                out.add("smsgw_smpp_window_size", "gauge", "the bind's window", b["window"], lb)
                out.add(
                    "smsgw_smpp_bind_submits_total", "counter", "requests sent on this bind", b["submits"], lb
                )
                out.add(
                    "smsgw_smpp_response_timeouts_total",
                    "counter",
                    "requests never answered in time",
                    b["timeouts"],
                    lb,
                )
                out.add("smsgw_smpp_binds_total", "counter", "successful binds", b["binds"], lb)
                out.add("smsgw_smpp_bind_failures_total", "counter", "refused binds", b["bind_failures"], lb)
                out.add("smsgw_smpp_links_lost_total", "counter", "bound links lost", b["links_lost"], lb)
                out.add(
                    "smsgw_smpp_bad_pdus_total", "counter", "malformed PDUs from the SMSC", b["bad_pdus"], lb
                )
                out.add("smsgw_smpp_deliver_sm_total", "counter", "deliver_sm received", b["deliver_sm"], lb)
                out.add("smsgw_smpp_data_sm_total", "counter", "data_sm received", b["data_sm"], lb)
                for command, count in sorted(b["unexpected"].items()):
                    out.add(
                        "smsgw_smpp_unexpected_pdus_total",
                        "counter",
                        "PDUs from the SMSC refused or dropped (stray responses, outbind, query_sm…)",
                        count,
                        {**lb, "command": command},
                    )
    writer = sources.writer
    if writer is not None:
        for carrier, hist in sorted(writer.receipt_latency.items()):
            out.histogram(
                "smsgw_receipt_latency_seconds",
                "time from submit_sm_resp to the delivery receipt",
                hist,
                {"carrier": carrier},
            )
        for carrier, count in sorted(writer.receipts_matched.items()):
            out.add(
                "smsgw_receipts_matched_total",
                "counter",
                "receipts matched to a message part",
                count,
                {"carrier": carrier},
            )
        # the writer's (no part has the id) and the link's (an id no part can have: unusable)
        unknown = dict(writer.receipts_unknown)
        for carrier, count in (pool.inbound.receipts_unknown if pool is not None else {}).items():
            unknown[carrier] = unknown.get(carrier, 0) + count
        for carrier, count in sorted(unknown.items()):
            out.add(
                "smsgw_receipts_unknown_total",
                "counter",
                "receipts for no message id the gateway sent (acknowledged)",
                count,
                {"carrier": carrier},
            )
        for name, counts, help_text in (
            ("smsgw_receipts_final_only_total", writer.receipts_final_only, "receipts for final parts only"),
            ("smsgw_receipts_ambiguous_total", writer.receipts_ambiguous, "receipts ambiguous hex/decimal"),
        ):
            for carrier, count in sorted(counts.items()):
                out.add(name, "counter", help_text, count, {"carrier": carrier})
        for carrier, relation in sorted(writer.receipt_ids.snapshot().items()):
            out.add(
                "smsgw_receipt_ids",
                "gauge",
                "how the carrier writes receipt ids (configured or learned)",
                1,
                {"carrier": carrier, "relation": relation.value},
            )
        for kind, count in sorted(writer.set_aside.items()):
            out.add(
                "smsgw_status_changes_set_aside_total",
                "counter",
                "status changes that could not be stored (logged with their reason)",
                count,
                {"kind": kind},
            )
        out.add(
            "smsgw_status_writer_failures_total",
            "counter",
            "batches the database refused as a whole (retried)",
            writer.failures,
        )
        out.add(
            "smsgw_status_writer_failing_batches",
            "gauge",
            "batches refused in a row (0 once one is written)",
            writer.failing_batches,
        )
        out.add(
            "smsgw_status_writer_backlog", "gauge", "status changes waiting to be written", writer.backlog
        )
        out.add(
            "smsgw_status_writer_orphans", "gauge", "receipts waiting for their submit result", writer.orphans
        )
        out.add("smsgw_status_writer_batches_total", "counter", "transactions written", writer.batches)
    link_events = sources.link_events
    if link_events is not None:
        for carrier, count in sorted(link_events.mo_messages.items()):
            out.add(
                "smsgw_mo_messages_total",
                "counter",
                "citizens' messages (reassembled)",
                count,
                {"carrier": carrier},
            )
    citizens = sources.citizens
    if citizens is not None:
        for outcome, count in sorted(citizens.handled.items()):
            out.add(
                "smsgw_citizen_messages_handled_total",
                "counter",
                "citizens' messages by what they were understood as and done",
                count,
                {"outcome": outcome},
            )
    limits = sources.limits
    if limits is not None:
        for (client, reason), count in sorted(limits.refused.items()):
            out.add(
                "smsgw_api_requests_limited_total",
                "counter",
                "CRM requests answered 429 (reason: rate or concurrency), counted in this process",
                count,
                {"client": client, "reason": reason},
            )
    dispatcher = sources.dispatcher
    if dispatcher is not None:
        out.add(
            "smsgw_dispatch_claimed_total", "counter", "messages claimed from the outbox", dispatcher.claimed
        )
        out.add(
            "smsgw_dispatch_in_flight", "gauge", "claimed messages without an outcome", dispatcher.in_flight
        )
        for kind, count in sorted(dispatcher.outcomes.items()):
            out.add("smsgw_dispatch_outcomes_total", "counter", "send outcomes", count, {"outcome": kind})
    membership = sources.membership
    if membership is not None:
        out.add(
            "smsgw_cluster_processes", "gauge", "live dispatch processes on the database", membership.members
        )
        out.add(
            "smsgw_cluster_takeovers_total",
            "counter",
            "dead processes whose messages and binds this one took over",
            membership.taken_over,
        )
    for status, count in sorted((outbox or {}).items()):
        out.add(
            "smsgw_outbox_messages", "gauge", "messages in the outbox by status", count, {"status": status}
        )
    return out.render()


async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[OPS]
    depth = await ctx.metrics.outbox.read(ctx.db)
    return web.Response(body=render(ctx.metrics, depth).encode(), headers={"Content-Type": CONTENT_TYPE})


OPERATIONS = (
    Operation(
        "GET",
        "/metrics",
        metrics,
        "metrics",
        "Prometheus metrics",
        {"200": content("text/plain", "Prometheus text format")},
        security=PUBLIC,
    ),
)
