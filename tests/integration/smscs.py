"""Small asyncio SMSCs whose habits the tests choose, for a real gateway to talk to over sockets.

- :class:`ReceiptIdSmsc`: answers submit_sm with ids from a decimal counter (which a test may
  restart, as some SMSCs do) and writes its receipts' ids in decimal or hex; it holds receipts
  until ``hold`` submits wait, so that many parts are open at once when they arrive.
- :class:`HostileSmsc`: answers submits with unusable ids (65+ characters, NUL-less, non-ASCII,
  empty, 5,000 digits) or good ones, sends receipts early, twice, in data_sm, for unknown or huge
  ids, and garbage, outbind, alert_notification, query_sm, bind requests, stray responses, an MO
  in data_sm, a link reset and an unbind; it records how the gateway answered each PDU it sent,
  and sends again on the next bind what a lost link left unanswered, as SMSCs do.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections import Counter
from datetime import datetime

from smpp_client import pdu as codec
from smpp_client.constants import RESPONSE_BIT, Cmd, Status, Tlv
from smpp_client.receipts import receipt_text

_BINDS = (Cmd.BIND_TRANSCEIVER, Cmd.BIND_TRANSMITTER, Cmd.BIND_RECEIVER)
_DATE = datetime(2026, 12, 1, 10, 0)


def header(length: int, command_id: int, status: int = 0, seq: int = 1) -> bytes:
    return struct.pack(">IIII", length, command_id, status, seq)


class _Link:
    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.closed = False

    def send(self, data: bytes) -> None:
        if not self.closed:
            self.writer.write(data)

    def close(self) -> None:
        self.closed = True
        self.writer.close()


class _Smsc:
    """Binds anyone, answers enquire_link and unbind, hands submit_sm and responses to subclasses."""

    def __init__(self) -> None:
        self.port = 0
        self.links: list[_Link] = []
        self._server: asyncio.Server | None = None
        self._serving: set[asyncio.Task] = set()
        self._seq = itertools.count(100_000)
        self.changed = asyncio.Event()

    async def __aenter__(self):
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        for link in self.links:
            link.close()
        for task in self._serving:
            task.cancel()

    @property
    def link(self) -> _Link | None:
        """The latest link still open (receipts go out on any bind of the ESME)."""
        return next((link for link in reversed(self.links) if not link.closed), None)

    def next_seq(self) -> int:
        return next(self._seq)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._serving.add(task)
        link = _Link(writer)
        self.links.append(link)
        frames = codec.FrameBuffer()
        try:
            while not link.closed:
                data = await reader.read(65536)
                if not data:
                    break
                for frame in frames.feed(data):
                    self._frame(link, frame)
        except (ConnectionError, codec.PduError):
            pass
        finally:
            link.closed = True
            writer.close()
            self._serving.discard(task)

    def _frame(self, link: _Link, frame: bytes) -> None:
        _, cid, status, seq = struct.unpack_from(">IIII", frame)
        if cid in _BINDS:
            link.send(codec.make(cid | RESPONSE_BIT, seq, system_id="smsc"))
            self.bound(link)
        elif cid == Cmd.ENQUIRE_LINK:
            link.send(header(16, Cmd.ENQUIRE_LINK_RESP, 0, seq))
        elif cid == Cmd.UNBIND:
            link.send(header(16, Cmd.UNBIND_RESP, 0, seq))
            link.close()
        elif cid == Cmd.SUBMIT_SM:
            self.submit(link, codec.decode(frame))
        elif cid & RESPONSE_BIT:
            self.answered(cid, status, seq)
        self.changed.set()

    def submit(self, link: _Link, p: codec.Pdu) -> None:
        raise NotImplementedError

    def bound(self, link: _Link) -> None:
        """A new bind: an SMSC sends again what the old link left unanswered."""

    def answered(self, command_id: int, status: int, seq: int) -> None:
        """The gateway's response to a PDU this SMSC sent."""

    def receipt(self, message_id: str, destination: str, stat: str = "DELIVRD") -> bytes:
        text = receipt_text(message_id, stat, _DATE, _DATE, "000" if stat == "DELIVRD" else "001")
        return codec.make(
            Cmd.DELIVER_SM,
            self.next_seq(),
            source_addr=destination,
            destination_addr="30311",
            esm_class=0x04,
            short_message=text.encode(),
        )

    async def wait_until(self, predicate, timeout: float = 20) -> None:
        async def until():
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), timeout)


class ReceiptIdSmsc(_Smsc):
    def __init__(self, receipt_base: str = "decimal", hold: int = 1):
        super().__init__()
        self.receipt_base = receipt_base
        self.hold = hold
        self._counter = itertools.count(1)
        self._waiting: list[tuple[int, str]] = []
        self.accepted: list[tuple[str, str]] = []  # (submit_sm_resp id, destination)
        self.acks: Counter[int] = Counter()  # deliver_sm_resp statuses

    def restart_counter(self) -> None:
        self._counter = itertools.count(1)

    def submit(self, link: _Link, p: codec.Pdu) -> None:
        number = next(self._counter)
        destination = p["destination_addr"]
        link.send(codec.make(Cmd.SUBMIT_SM_RESP, p.sequence, message_id=str(number)))
        self.accepted.append((str(number), destination))
        self._waiting.append((number, destination))
        if len(self._waiting) >= self.hold:
            waiting, self._waiting = self._waiting, []
            for n, to in waiting:
                link.send(self.receipt(format(n, "x") if self.receipt_base == "hex" else str(n), to))

    def answered(self, command_id: int, status: int, seq: int) -> None:
        if command_id == Cmd.DELIVER_SM_RESP:
            self.acks[status] += 1


class HostileSmsc(_Smsc):
    """One hostile habit per submit, in a fixed cycle; every tenth-ish submit gets an unusable id."""

    BAD_IDS = (
        b"a" * 65 + b"\x00",
        b"7" * 5000 + b"\x00",
        b"n" * 70,  # no NUL
        b"caf\xe9-1\x00",
        b"\x00",
    )
    # what the gateway must answer each hostile request with: label -> (command_id, status)
    EXPECTED = {
        "unknown command": (Cmd.GENERIC_NACK, Status.ESME_RINVCMDID),
        "outbind": (Cmd.GENERIC_NACK, Status.ESME_RINVBNDSTS),
        "query_sm": (Cmd.QUERY_SM_RESP, Status.ESME_RINVCMDID),
        "bind_transmitter": (Cmd.BIND_TRANSMITTER_RESP, Status.ESME_RALYBND),
        "submit_multi": (Cmd.SUBMIT_MULTI_RESP, Status.ESME_RINVCMDID),
        "enquire_link": (Cmd.ENQUIRE_LINK_RESP, 0),
        "truncated deliver_sm": (Cmd.DELIVER_SM_RESP, Status.ESME_RINVCMDLEN),
        "receipt for an unknown id": (Cmd.DELIVER_SM_RESP, 0),
        "receipt with a 5,000-digit id": (Cmd.DELIVER_SM_RESP, 0),
        "receipt with a 300-octet TLV id": (Cmd.DELIVER_SM_RESP, 0),
        "MO in data_sm": (Cmd.DATA_SM_RESP, 0),
        "MO from an impossible sender": (Cmd.DATA_SM_RESP, Status.ESME_RINVSRCADR),
    }

    def __init__(self, reset_at: int = 13):
        super().__init__()
        self.reset_at = reset_at
        self.unbind_at = -1
        self.submits = 0
        self.bad_answers = 0
        self.good: dict[str, str] = {}  # good id -> destination
        self._unanswered: dict[int, tuple[str, bytes]] = {}  # seq -> (label, PDU)
        self.answers: dict[str, set[tuple[int, int]]] = {}  # label -> every answer it got

    def submit(self, link: _Link, p: codec.Pdu) -> None:
        n = self.submits
        self.submits += 1
        to = p["destination_addr"]
        habit = n % 10
        if habit < len(self.BAD_IDS):
            body = self.BAD_IDS[habit]
            link.send(header(16 + len(body), Cmd.SUBMIT_SM_RESP, 0, p.sequence) + body)
            self.bad_answers += 1
        else:
            message_id = f"hst-{n}"
            self.good[message_id] = to
            answer = codec.make(Cmd.SUBMIT_SM_RESP, p.sequence, message_id=message_id)
            if habit == 5:  # the receipt overtakes the answer
                link.send(self.receipt(message_id.upper(), to))
                link.send(answer)
            elif habit == 6:  # in data_sm, by TLVs
                link.send(answer)
                link.send(
                    codec.make(
                        Cmd.DATA_SM,
                        self.next_seq(),
                        source_addr=to,
                        destination_addr="30311",
                        esm_class=0x04,
                        tlvs={
                            Tlv.RECEIPTED_MESSAGE_ID: message_id.encode() + b"\x00",
                            Tlv.MESSAGE_STATE: b"\x02",
                        },
                    )
                )
            elif habit == 7:  # twice
                link.send(answer)
                link.send(self.receipt(message_id, to))
                link.send(self.receipt(message_id, to))
            elif habit == 8:
                link.send(answer)
                link.send(self.receipt(message_id, to, "UNDELIV"))
            else:
                link.send(answer)
                link.send(self.receipt(message_id, to))
        self._hostile(link, n)

    def _request(self, link: _Link, label: str, build) -> None:
        seq = self.next_seq()
        frame = build(seq)
        self._unanswered[seq] = (label, frame)
        link.send(frame)

    def unbind_next(self) -> None:
        """Unbind from the SMSC's side after the next submit_sm."""
        self.unbind_at = self.submits

    def bound(self, link: _Link) -> None:
        left, self._unanswered = self._unanswered, {}
        for label, frame in left.values():  # the same PDU under a new sequence number
            self._request(link, label, lambda s, frame=frame: frame[:12] + struct.pack(">I", s) + frame[16:])

    def _hostile(self, link: _Link, n: int) -> None:
        if n == self.reset_at:
            link.send(header(3, Cmd.DELIVER_SM))  # an impossible command_length: the link is reset
            return
        if n == self.unbind_at:
            link.send(header(16, Cmd.UNBIND, 0, self.next_seq()))
            return
        actions = [
            ("unknown command", lambda s: header(16, 0x00000099, 0, s)),
            ("outbind", lambda s: codec.make(Cmd.OUTBIND, s, system_id="smsc", password="pw")),
            ("query_sm", lambda s: codec.make(Cmd.QUERY_SM, s, message_id="hst-1")),
            ("bind_transmitter", lambda s: codec.make(Cmd.BIND_TRANSMITTER, s, system_id="x", password="y")),
            ("submit_multi", lambda s: header(20, Cmd.SUBMIT_MULTI, 0, s) + b"\x00\x01\x01\x00"),
            ("enquire_link", lambda s: header(16, Cmd.ENQUIRE_LINK, 0, s)),
            ("truncated deliver_sm", lambda s: header(19, Cmd.DELIVER_SM, 0, s) + b"\x00\x01\x01"),
            ("receipt for an unknown id", lambda s: self._receipt_as(s, "nobody-knows-me")),
            ("receipt with a 5,000-digit id", lambda s: self._receipt_as(s, "9" * 5000)),
            (
                "receipt with a 300-octet TLV id",
                lambda s: codec.make(
                    Cmd.DELIVER_SM,
                    s,
                    esm_class=0x04,
                    short_message=b"id:1 stat:DELIVRD",
                    tlvs={Tlv.RECEIPTED_MESSAGE_ID: b"x" * 300 + b"\x00"},
                ),
            ),
            (
                "MO in data_sm",
                lambda s: codec.make(
                    Cmd.DATA_SM,
                    s,
                    source_addr="525500000099",
                    destination_addr="30311",
                    tlvs={Tlv.MESSAGE_PAYLOAD: b"HOLA"},
                ),
            ),
            (
                "MO from an impossible sender",
                lambda s: codec.make(
                    Cmd.DATA_SM,
                    s,
                    source_addr="5" * 40,
                    destination_addr="30311",
                    tlvs={Tlv.MESSAGE_PAYLOAD: b"x"},
                ),
            ),
        ]
        label, build = actions[n % len(actions)]
        self._request(link, label, build)
        if n % 3 == 0:  # noise that wants no answer
            alert = codec.make(Cmd.ALERT_NOTIFICATION, self.next_seq(), source_addr="5255", esme_addr="30311")
            link.send(alert)
            link.send(codec.make(Cmd.SUBMIT_SM_RESP, 7_000_000 + n, message_id="stray"))
            link.send(codec.generic_nack(7_100_000 + n, 0x08))

    def _receipt_as(self, seq: int, message_id: str) -> bytes:
        text = receipt_text(message_id, "DELIVRD", _DATE, _DATE).encode()
        return codec.make(Cmd.DELIVER_SM, seq, esm_class=0x04, tlvs={Tlv.MESSAGE_PAYLOAD: text})

    def answered(self, command_id: int, status: int, seq: int) -> None:
        request = self._unanswered.pop(seq, None)
        if request is not None:
            self.answers.setdefault(request[0], set()).add((command_id, status))


class RandomFramesSmsc(_Smsc):
    """Answers every submit_sm with a good id and its receipt, then sends frames drawn from a seeded
    random generator: any command id (requests, responses, unknown ones) with random bodies, valid
    PDUs with random bytes flipped, and now and then a command_length that corrupts the stream (the
    gateway must reset the link). What a fuzzer sends, over a real socket, to a running gateway."""

    COMMANDS = (*(int(c) for c in Cmd), 0x00000099, 0x80000099, 0xFFFFFFFF)

    def __init__(self, seed: int, frames_per_submit: int = 3, corrupt_one_in: int = 60):
        super().__init__()
        self.random = __import__("random").Random(seed)
        self.frames_per_submit = frames_per_submit
        self.corrupt_one_in = corrupt_one_in
        self.submits = 0
        self.sent = Counter()  # what was sent: "random", "flipped", "corrupt"
        self.good: dict[str, str] = {}

    def submit(self, link: _Link, p: codec.Pdu) -> None:
        message_id = f"rnd-{self.submits}"
        self.submits += 1
        self.good[message_id] = p["destination_addr"]
        link.send(codec.make(Cmd.SUBMIT_SM_RESP, p.sequence, message_id=message_id))
        text = receipt_text(message_id, "DELIVRD", _DATE, _DATE).encode()
        receipt = codec.make(Cmd.DELIVER_SM, self.next_seq(), esm_class=0x04, short_message=text)
        link.send(receipt)
        for _ in range(self.frames_per_submit):
            link.send(self._frame_for(receipt))

    def _frame_for(self, valid: bytes) -> bytes:
        r = self.random
        if r.randrange(self.corrupt_one_in) == 0:
            self.sent["corrupt"] += 1
            return header(r.choice((0, 3, 15, 2**31 + 7, 10_000_000)), r.choice(self.COMMANDS))
        if r.random() < 0.3:  # a real PDU with a few bytes changed past its header
            self.sent["flipped"] += 1
            frame = bytearray(valid)
            frame[12:16] = struct.pack(">I", self.next_seq())
            for _ in range(r.randint(1, 4)):
                frame[r.randrange(16, len(frame))] = r.randrange(256)
            return bytes(frame)
        self.sent["random"] += 1
        body = r.randbytes(r.choice((0, 1, 4, 17, 64, r.randrange(300))))
        status = r.choice((0, 0, 0, 8, 0x58, r.getrandbits(32)))
        return header(16 + len(body), r.choice(self.COMMANDS), status, self.next_seq()) + body
