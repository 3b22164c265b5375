"""Receipts reach the message they belong to, whatever an SMSC does with its ids.

A real gateway (Gateway) against :class:`ReceiptIdSmsc` over sockets, on SQLite and on the
PostgreSQL server: an SMSC that answers submit_sm with decimal ids and writes its receipts in hex,
and one whose decimal counter restarts, each holding its receipts until 200 parts are open at once.
"""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import select

from gateway.roles import Gateway, build
from gateway.store import reads
from gateway.store.models import message_parts, message_status_history
from smpp_client.message_ids import Relation
from tests.conftest import make_settings
from tests.integration.smscs import ReceiptIdSmsc
from tests.integration.test_faults import queue, settle

COUNT = 200


def settings(db_url: str, port: int, receipt_ids: str):
    return make_settings(
        {
            "gateway": {"listen": "127.0.0.1:0", "log_format": "console"},
            "database": {"url": db_url},
            "carriers": [
                {
                    "name": "smsc",
                    "port": port,
                    "system_id": "smsgw",
                    "password_env": "SMSGW_TEST_SMSC_PASSWORD",
                    "reconnect_min_seconds": 0.05,
                    "reconnect_max_seconds": 0.2,
                    "tps": 1000,
                    "window": 20,
                    "receipt_ids": receipt_ids,
                }
            ],
            "crm_clients": [{"id": "cesac", "secret_env": "SMSGW_TEST_SECRET"}],
            "dispatch": {"interval_seconds": 0.2},
            "quiet_hours": {"enabled": False},
        }
    )


@contextlib.asynccontextmanager
async def gateway(db_url: str, smsc: ReceiptIdSmsc, receipt_ids: str = "auto"):
    runtime = build(settings(db_url, smsc.port, receipt_ids))
    await runtime.start()
    try:
        assert await runtime.pool.wait_bound(5)
        yield runtime
    finally:
        await runtime.stop()


def histories(runtime: Gateway, ids: list[int]) -> dict[int, tuple[str, ...]]:
    with runtime.db.engine.connect() as conn:
        rows = conn.execute(
            select(message_status_history.c.message_id, message_status_history.c.status)
            .where(message_status_history.c.message_id.in_(ids))
            .order_by(message_status_history.c.id)
        )
        out: dict[int, list[str]] = {mid: [] for mid in ids}
        for mid, status in rows:
            out[mid].append(status)
        return {mid: tuple(statuses) for mid, statuses in out.items()}


def parts(runtime: Gateway, ids: list[int]) -> dict[int, tuple]:
    p = message_parts.c
    with runtime.db.engine.connect() as conn:
        rows = conn.execute(
            select(p.message_id, p.smsc_message_id, p.status, p.done_at).where(p.message_id.in_(ids))
        )
        return {mid: (smsc_id, status, done_at) for mid, smsc_id, status, done_at in rows}


def assert_each_on_its_own_message(runtime, smsc: ReceiptIdSmsc, ids: list[int], final: dict) -> None:
    assert {r["status"] for r in final.values()} == {"delivered"}  # none left submitted
    assert set(histories(runtime, ids).values()) == {("queued", "submitted", "delivered")}  # none twice
    # the message the SMSC answered with id N is the one its receipt for N went to
    sent_to = dict(smsc.accepted)
    for mid, (smsc_id, status, _) in parts(runtime, ids).items():
        assert status == "delivered"
        assert "+" + sent_to[smsc_id] == final[mid]["msisdn"]


@pytest.mark.parametrize("receipt_ids", ["auto", "submit_decimal_receipt_hex"])
async def test_decimal_submit_ids_and_hex_receipts(db_url, receipt_ids):
    smsc = ReceiptIdSmsc(receipt_base="hex", hold=COUNT)
    async with smsc, gateway(db_url, smsc, receipt_ids) as runtime:
        ids = queue(runtime, COUNT)
        final = await settle(runtime, ids)
        assert_each_on_its_own_message(runtime, smsc, ids, final)
        writer = runtime.writer
        assert writer.receipts_matched == {"smsc": COUNT}
        assert writer.receipts_unknown == writer.receipts_ambiguous == writer.receipts_final_only == {}
        assert writer.receipt_ids.relation("smsc") is Relation.SUBMIT_DECIMAL_RECEIPT_HEX
        await smsc.wait_until(lambda: sum(smsc.acks.values()) == COUNT)
        assert smsc.acks == {0: COUNT}  # every receipt acknowledged, none refused


async def test_a_decimal_counter_that_restarts(db_url):
    smsc = ReceiptIdSmsc(receipt_base="decimal", hold=COUNT)
    async with smsc, gateway(db_url, smsc) as runtime:
        first = queue(runtime, COUNT)
        first_final = await settle(runtime, first)
        assert_each_on_its_own_message(runtime, smsc, first, first_final)
        before = (histories(runtime, first), parts(runtime, first))
        smsc.restart_counter()  # the second broadcast gets ids 1..200 again
        smsc.accepted.clear()
        second = queue(runtime, COUNT, start=COUNT)
        second_final = await settle(runtime, second)
        assert_each_on_its_own_message(runtime, smsc, second, second_final)
        assert (histories(runtime, first), parts(runtime, first)) == before  # untouched
        assert {r["status"] for r in (runtime.db.transaction(reads.get_message, m) for m in first)} == {
            "delivered"
        }
        assert runtime.writer.receipts_matched == {"smsc": 2 * COUNT}
        assert runtime.writer.receipt_ids.relation("smsc") is Relation.SAME
