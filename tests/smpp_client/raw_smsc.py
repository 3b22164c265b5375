"""A tiny SMPP server for tests: the test reads and writes every PDU (and every bad byte) itself."""

from __future__ import annotations

import asyncio
import struct

from smpp_client import pdu as codec
from smpp_client.constants import RESPONSE_BIT, Cmd
from smpp_client.window import Pending

TIMEOUT = 5.0


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self._frames = codec.FrameBuffer()
        self._ready: list[bytes] = []

    async def read_frame(self, timeout: float = TIMEOUT) -> bytes:
        while not self._ready:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise ConnectionError("client closed")
            self._ready += self._frames.feed(data)
        return self._ready.pop(0)

    async def read(self, timeout: float = TIMEOUT) -> codec.Pdu:
        return codec.decode(await self.read_frame(timeout))

    async def read_until(self, command_id: int, timeout: float = TIMEOUT) -> codec.Pdu:
        """The next PDU of this kind (answering enquire_link on the way)."""
        while True:
            p = await self.read(timeout)
            if p.command_id == command_id:
                return p
            if p.command_id == Cmd.ENQUIRE_LINK:
                self.send(codec.make(Cmd.ENQUIRE_LINK_RESP, p.sequence))

    async def closed(self, timeout: float = TIMEOUT) -> bool:
        """True once the client closed the connection (pending frames are skipped)."""
        try:
            while True:
                await self.read_frame(timeout)
        except ConnectionError:
            return True

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def respond(self, request: codec.Pdu, status: int = 0, **fields) -> None:
        self.send(codec.make(request.command_id | RESPONSE_BIT, request.sequence, status, **fields))

    async def bind(self, status: int = 0) -> codec.Pdu:
        p = await self.read()
        assert p.command_id in (Cmd.BIND_TRANSCEIVER, Cmd.BIND_TRANSMITTER, Cmd.BIND_RECEIVER), p
        if status:
            self.send(codec.make(p.command_id | RESPONSE_BIT, p.sequence, status))
        else:
            self.respond(p, system_id="raw")
        return p

    def close(self) -> None:
        self.writer.close()


class RawSmsc:
    def __init__(self) -> None:
        self.connections: asyncio.Queue[Conn] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.accepted = 0

    async def __aenter__(self) -> RawSmsc:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        while not self.connections.empty():
            self.connections.get_nowait().close()

    async def _accept(self, reader, writer) -> None:
        self.accepted += 1
        await self.connections.put(Conn(reader, writer))

    async def accept(self, timeout: float = TIMEOUT) -> Conn:
        return await asyncio.wait_for(self.connections.get(), timeout)

    async def accept_bound(self, timeout: float = TIMEOUT) -> Conn:
        conn = await self.accept(timeout)
        await conn.bind()
        return conn


class Recorder(Pending):
    """A window entry that remembers how it ended."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.result: tuple | None = None
        self.done = asyncio.Event()

    def resolve(self, status, message_id, pdu) -> None:
        self.result = ("answer", status, message_id)
        self.done.set()

    def fail(self, code) -> None:
        self.result = ("fail", code)
        self.done.set()

    async def wait(self, timeout: float = TIMEOUT) -> tuple:
        await asyncio.wait_for(self.done.wait(), timeout)
        return self.result


def header(length: int, command_id: int, status: int = 0, seq: int = 1) -> bytes:
    return struct.pack(">IIII", length, command_id, status, seq)


class Scripted:
    """Binds every connection and answers each submit_sm with ``answer(pdu, n)`` -> (status, id) or None
    (no answer); an id given as bytes is sent as the whole body, as it is. Records what it received.
    Enquire links are answered."""

    def __init__(self, smsc: RawSmsc, answer=None):
        self.smsc = smsc
        self.answer = answer or (lambda p, n: (0, f"id{n}"))
        self.received: list[codec.Pdu] = []
        self.received_on: list[Conn] = []
        self._changed = asyncio.Event()
        self.conns: list[Conn] = []
        self._task: asyncio.Task | None = None
        self._serving: set[asyncio.Task] = set()
        self.bind_status = 0

    async def __aenter__(self) -> Scripted:
        self._task = asyncio.create_task(self._accept())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        for t in self._serving:
            t.cancel()
        for c in self.conns:
            c.close()

    async def _accept(self) -> None:
        while True:
            conn = await self.smsc.connections.get()
            self.conns.append(conn)
            task = asyncio.create_task(self._serve(conn))
            self._serving.add(task)

    async def _serve(self, conn: Conn) -> None:
        try:
            await conn.bind(self.bind_status)
            while True:
                p = await conn.read(timeout=3600)
                if p.command_id == Cmd.SUBMIT_SM:
                    self.received.append(p)
                    self.received_on.append(conn)
                    self._changed.set()
                    result = self.answer(p, len(self.received))
                    if result is not None:
                        status, message_id = result
                        if isinstance(message_id, bytes):  # the body exactly as given
                            head = header(16 + len(message_id), Cmd.SUBMIT_SM_RESP, status, p.sequence)
                            conn.send(head + message_id)
                        elif status:
                            conn.respond(p, status)
                        else:
                            conn.respond(p, message_id=message_id)
                elif p.command_id in (Cmd.ENQUIRE_LINK, Cmd.UNBIND):
                    conn.respond(p)
                    if p.command_id == Cmd.UNBIND:
                        conn.close()
                        return
        except (TimeoutError, ConnectionError, codec.PduError):
            conn.close()

    async def wait_received(self, count: int, timeout: float = TIMEOUT) -> None:
        async def until():
            while len(self.received) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    def drop_all(self) -> None:
        for c in self.conns:
            c.close()


async def all_bound(sessions, timeout: float = TIMEOUT) -> None:
    await asyncio.wait_for(asyncio.gather(*(s.bound.wait() for s in sessions)), timeout)
