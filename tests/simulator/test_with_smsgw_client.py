"""The simulator driven by smsgw's own asyncio client (smpp_client.session), next to smpplib's."""

from __future__ import annotations

import asyncio

import pytest

from simulator.app import Simulator
from simulator.settings import SimulatorSettings
from smpp_client.config import SessionConfig
from smpp_client.constants import ESM_DELIVERY_RECEIPT, MessageState, Status
from smpp_client.errors import LinkDown
from smpp_client.pdu import Pdu
from smpp_client.receipts import is_receipt, parse_receipt
from smpp_client.session import SessionListener, SmppSession
from textcodec.encoding import DC_DEFAULT

RULES = [
    {"number": "5511110001", "behaviour": "never_delivers", "err": 1},
    {"number": "5511110002", "behaviour": "switched_off", "delay": 0.05},
    {"number": "5511110003", "behaviour": "reject", "err": 11},
    {"number": "5511110004", "behaviour": "invalid"},
]


@pytest.fixture
async def sim():
    settings = SimulatorSettings.model_validate(
        {
            "http_listen": "127.0.0.1:0",
            "carriers": [
                {
                    "name": "telcel",
                    "port": 0,
                    "receipt_delay": 0.01,
                    "expire_delay": 0.05,
                    "numbers": RULES,
                    "max_binds": 2,
                }
            ],
        }
    )
    simulator = Simulator(settings)
    await simulator.start()
    yield simulator
    await simulator.stop()


class Binds(SessionListener):
    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Event()

    def session_bound(self, session: SmppSession) -> None:
        self.count += 1
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        while self.count < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)


class Client:
    """An smsgw session plus a queue of the deliver_sm it receives."""

    def __init__(self, port: int, password: str = "smsgw"):
        self.delivered: asyncio.Queue[Pdu] = asyncio.Queue()
        self.binds = Binds()
        config = SessionConfig(
            carrier="telcel",
            host="127.0.0.1",
            port=port,
            system_id="smsgw",
            password=password,
            window=50,
            response_timeout_seconds=2,
            reconnect_min_seconds=0.05,
            reconnect_max_seconds=0.1,
        )
        self.session = SmppSession(config, self._on_deliver, listener=self.binds)
        self.task = asyncio.create_task(self.session.run())

    def _on_deliver(self, session, pdu: Pdu, respond, patient: bool = False) -> None:
        self.delivered.put_nowait(pdu)
        respond(Status.ESME_ROK)

    async def submit(self, number: str, text: bytes = b"hola") -> Pdu:
        return await self.session.submit(
            source_addr="30311",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=number,
            registered_delivery=1,
            data_coding=DC_DEFAULT,
            short_message=text,
        )

    async def receipt(self) -> Pdu:
        return await asyncio.wait_for(self.delivered.get(), 5)

    async def close(self) -> None:
        await self.session.stop(1)
        await asyncio.wait_for(self.task, 5)


@pytest.fixture
async def client(sim):
    c = Client(sim.carrier_port("telcel"))
    await asyncio.wait_for(c.session.bound.wait(), 5)
    yield c
    await c.close()


async def test_wrong_password_is_refused_and_retried(sim):
    c = Client(sim.carrier_port("telcel"), password="wrong")
    try:
        # no event marks a refused bind: look at the session's state, bounded by the timeout
        async def refused() -> None:
            while c.session.bind_failures == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

        await asyncio.wait_for(refused(), 5)
        assert "ESME_RINVPASWD" in c.session.last_error
        assert not c.session.bound.is_set()
    finally:
        await c.close()


@pytest.mark.parametrize(
    ("number", "stat", "state", "err"),
    [
        ("525512345678", "DELIVRD", MessageState.DELIVERED, "000"),
        ("525511110001", "UNDELIV", MessageState.UNDELIVERABLE, "001"),
        ("525511110002", "EXPIRED", MessageState.EXPIRED, None),
        ("525511110003", "REJECTD", MessageState.REJECTED, "011"),
    ],
)
async def test_each_receipt_outcome_reaches_the_client(client, number, stat, state, err):
    resp = await client.submit(number)
    assert resp.status == Status.ESME_ROK
    message_id = resp["message_id"]
    receipt = await client.receipt()
    assert receipt.fields["esm_class"] & ESM_DELIVERY_RECEIPT
    assert is_receipt(receipt)
    parsed = parse_receipt(receipt)
    assert (parsed.message_id, parsed.stat, parsed.state) == (message_id, stat, state)
    if err is not None:
        assert parsed.error == err


async def test_invalid_destination_is_refused_at_submit(client):
    resp = await client.submit("525511110004")
    assert resp.status == Status.ESME_RINVDSTADR


async def test_throttling_answers_rthrottled(sim, client):
    sim.smsc.carriers["telcel"].update({"tps": 1, "tps_burst": 1})
    statuses = await asyncio.gather(*(client.submit("525512345678") for _ in range(5)))
    codes = [s.status for s in statuses]
    assert codes.count(Status.ESME_ROK) == 1
    assert codes.count(Status.ESME_RTHROTTLED) == 4


async def test_a_dropped_link_fails_in_flight_and_the_client_rebinds(sim, client):
    sim.smsc.carriers["telcel"].faults.update({"never_answer_every": 1})
    pending = asyncio.create_task(client.submit("525512345678"))
    await asyncio.sleep(0)  # let the submit reach the wire
    sim.smsc.carriers["telcel"].drop_all("test")
    with pytest.raises(LinkDown):
        await asyncio.wait_for(pending, 5)
    sim.smsc.carriers["telcel"].faults.update({"never_answer_every": None})
    await client.binds.wait_for(2)
    assert (await client.submit("525512345678")).status == Status.ESME_ROK
