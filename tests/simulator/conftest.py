"""Fixtures: a simulator on ephemeral ports in a background thread, smpplib's own blocking client,
and a raw socket client speaking through smsgw's codec (for malformed PDUs)."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions

from simulator.app import Simulator
from simulator.settings import SimulatorSettings
from smpp_client.constants import Cmd
from smpp_client.pdu import Pdu, decode, make

TIMEOUT = 5.0


class SimThread:
    """A running simulator whose event loop lives in its own thread."""

    def __init__(self, raw_settings: dict):
        self.settings = SimulatorSettings.model_validate(raw_settings)
        self.sim = Simulator(self.settings)
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self.thread.start()
        if not self._started.wait(TIMEOUT):
            raise RuntimeError("simulator did not start")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.sim.start())
        except BaseException as exc:  # surfaced to the test
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    def stop(self) -> None:
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(TIMEOUT)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()

    def port(self, carrier: str = "telcel") -> int:
        return self.sim.carrier_port(carrier)

    @property
    def smsc(self):
        return self.sim.smsc

    @property
    def store(self):
        return self.sim.store

    def call(self, fn: Callable[..., Any], *args) -> Any:
        """Run ``fn(*args)`` on the simulator's loop (its state is not thread-safe) and return the result."""

        async def wrapper():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(TIMEOUT)

    def http(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.sim.http_url}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
                raw = resp.read()
                ctype = resp.headers.get("Content-Type", "")
                status = resp.status
        except urllib.error.HTTPError as err:
            raw = err.read()
            ctype = err.headers.get("Content-Type", "")
            status = err.code
        payload = json.loads(raw) if "json" in ctype else raw.decode()
        return status, payload, ctype

    def get(self, path: str) -> Any:
        status, payload, _ = self.http("GET", path)
        assert status == 200, payload
        return payload

    def wait_until(
        self, predicate: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition"
    ) -> Any:
        """Poll ``predicate`` on the simulator loop (a state change there has no event we can await here)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.call(predicate)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.01)


def carrier(name: str, **overrides) -> dict:
    base = {"name": name, "port": 0, "receipt_delay": 0, "expire_delay": 0, "deliver_timeout": 2.0}
    base.update(overrides)
    return base


@pytest.fixture
def make_sim():
    started: list[SimThread] = []

    def factory(telcel: dict | None = None, movistar: dict | None = None, **top) -> SimThread:
        raw = {
            "http_listen": "127.0.0.1:0",
            "tick_ms": 2,
            "carriers": [carrier("telcel", **(telcel or {})), carrier("movistar", **(movistar or {}))],
        }
        raw.update(top)
        sim = SimThread(raw)
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim) -> SimThread:
    return make_sim()


# -- smpplib's own client --------------------------------------------------------------------------


class LibClient:
    """smpplib.client.Client, bound, collecting what it reads (errors do not raise)."""

    def __init__(
        self,
        port: int,
        kind: str = "transceiver",
        system_id: str = "smsgw",
        password: str = "smsgw",
        timeout: float = 1.0,
        ack: bool = True,
    ):
        self.client = smpplib.client.Client("127.0.0.1", port, timeout=timeout, allow_unknown_opt_params=True)
        self.responses: list = []  # submit_sm_resp, error or not
        self.received: list = []  # deliver_sm
        self.queries: list = []
        self.errors: list = []
        self.ack_status = None if ack else smpplib.consts.SMPP_ESME_RX_T_APPN
        self.client.set_message_sent_handler(lambda pdu, **kw: self.responses.append(pdu))
        self.client.set_message_received_handler(self._received)
        self.client.set_query_resp_handler(lambda pdu, **kw: self.queries.append(pdu))
        self.client.set_error_pdu_handler(lambda pdu: self.errors.append(pdu))
        self.client.connect()
        self.kind = kind
        getattr(self.client, f"bind_{kind}")(system_id=system_id, password=password)

    def _received(self, pdu, **kw):
        self.received.append(pdu)
        return self.ack_status

    def submit(self, to: str = "525512345678", text: bytes = b"Hola", registered_delivery: int = 1, **extra):
        params = dict(
            source_addr_ton=6,
            source_addr_npi=1,
            source_addr="30311",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=to,
            short_message=text,
            registered_delivery=registered_delivery,
        )
        params.update(extra)
        return self.client.send_message(**params)

    def read_until(self, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("timed out reading from the simulator")
            self.client.read_once()

    def wait_responses(self, count: int, timeout: float = TIMEOUT) -> list:
        self.read_until(lambda: len(self.responses) >= count, timeout)
        return self.responses

    def wait_received(self, count: int, timeout: float = TIMEOUT) -> list:
        self.read_until(lambda: len(self.received) >= count, timeout)
        return self.received

    def close(self) -> None:
        try:
            self.client.unbind()
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError):
            pass
        self.client.disconnect()


@pytest.fixture
def lib_clients():
    clients: list[LibClient] = []

    def factory(*args, **kwargs) -> LibClient:
        client = LibClient(*args, **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        if client.client._socket is not None:
            client.client.disconnect()


# -- a raw client with smsgw's codec ---------------------------------------------------------------


class RawClient:
    def __init__(self, port: int, timeout: float = TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def request(self, command_id: int, status: int = 0, tlvs: dict | None = None, **fields) -> int:
        seq = self.next_seq()
        self.send(make(command_id, seq, status, tlvs, **fields))
        return seq

    def _recv_exact(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(size)
            if not chunk:
                raise ConnectionError("closed by the simulator")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def read(self, timeout: float = TIMEOUT) -> Pdu:
        self.sock.settimeout(timeout)
        head = self._recv_exact(16)
        length = struct.unpack(">I", head[:4])[0]
        return decode(head + self._recv_exact(length - 16))

    def read_until(self, command_id: int, timeout: float = TIMEOUT) -> Pdu:
        """The next PDU with this command id; others met on the way are dropped unanswered."""
        deadline = time.monotonic() + timeout
        while True:
            pdu = self.read(max(0.01, deadline - time.monotonic()))
            if pdu.command_id == command_id:
                return pdu

    def bind(
        self, kind: int = Cmd.BIND_TRANSCEIVER, system_id: str = "smsgw", password: str = "smsgw"
    ) -> Pdu:
        self.request(kind, system_id=system_id, password=password, interface_version=0x34)
        return self.read()

    def submit(
        self,
        to: str = "525512345678",
        text: bytes = b"Hola",
        registered_delivery: int = 1,
        tlvs: dict | None = None,
        **extra,
    ) -> int:
        fields = dict(
            source_addr_ton=6,
            source_addr_npi=1,
            source_addr="30311",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=to,
            short_message=text,
            registered_delivery=registered_delivery,
        )
        fields.update(extra)
        return self.request(Cmd.SUBMIT_SM, tlvs=tlvs, **fields)

    def ack(self, pdu: Pdu, status: int = 0) -> None:
        self.send(make(Cmd.DELIVER_SM_RESP, pdu.sequence, status, message_id=""))

    def closed(self, timeout: float = TIMEOUT) -> bool:
        """True once the simulator has closed the connection (reading and discarding anything before)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_clients():
    clients: list[RawClient] = []

    def factory(port: int) -> RawClient:
        client = RawClient(port)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()
