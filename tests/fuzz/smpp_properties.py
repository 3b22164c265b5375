"""The link's parsers over hostile input: the PDU codec and framing, one connection's frame
handling (with the real inbound side: receipts, MO reassembly, decoding), and receipts.

Documented errors: :class:`smpp_client.pdu.PduError` from the codec and the frame buffer, nothing
from a connection (every PDU is answered, refused or dropped), nothing from the receipt parser
(None or :class:`~smpp_client.receipts.UnusableId` for what cannot be used).
"""

from __future__ import annotations

import asyncio
import struct
from datetime import datetime

from hypothesis import strategies as st

from smpp_client import pdu as codec
from smpp_client.config import SessionConfig
from smpp_client.connection import Connection
from smpp_client.constants import RESPONSE_BIT, Cmd, Status, Tlv
from smpp_client.inbound import Inbound
from smpp_client.message_ids import ReceiptIdRelations, Relation, candidate_forms, submitted_form, usable
from smpp_client.receipts import MAX_ERROR_LENGTH, Receipt, UnusableId, read_receipt, receipt_text
from smpp_client.session import SmppSession
from tests.smpp_client.link_events import AcknowledgingEvents

from .registry import Property

HEADER = struct.Struct(">IIII")
COMMANDS = [int(c) for c in Cmd]
TLV_TAGS = [int(t) for t in Tlv]

tlvs = st.dictionaries(st.sampled_from(TLV_TAGS) | st.integers(0, 0xFFFF), st.binary(max_size=80), max_size=4)
c_strings = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=24)
message_ids = st.one_of(
    st.text("0123456789abcdefABCDEF", min_size=1, max_size=80),
    st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=80),
    st.builds(lambda n: "9" * n, st.integers(60, 5000)),
)


def _frame(cid: int, status: int, seq: int, body: bytes) -> bytes:
    return HEADER.pack(16 + len(body), cid, status, seq) + body


def _receipt_body(message_id: str, stat: str, err: str, extra: bytes) -> bytes:
    text = receipt_text("ID", stat, _AT, _AT, err).replace("ID", message_id, 1)
    return text.encode("latin-1", "replace") + extra


_AT = datetime(2026, 12, 1, 10, 0)
stats = st.sampled_from(["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "ACCEPTD", "ENROUTE", "bogus", ""])

receipt_pdus = st.builds(
    lambda cid, seq, mid, stat, err, extra, t, use_payload: (
        codec.make(
            cid,
            seq,
            esm_class=0x04,
            source_addr="525512345678",
            **(
                {"tlvs": {**t, Tlv.MESSAGE_PAYLOAD: _receipt_body(mid, stat, err, extra)}}
                if use_payload
                else {"short_message": _receipt_body(mid, stat, err, extra)[:254], "tlvs": t}
            ),
        )
        if cid == Cmd.DELIVER_SM
        else codec.make(cid, seq, esm_class=0x04, source_addr="525512345678", tlvs=t)
    ),
    st.sampled_from([Cmd.DELIVER_SM, Cmd.DATA_SM]),
    st.integers(0, 2**31),
    message_ids,
    stats,
    st.text("0123456789AZ", max_size=12),
    st.binary(max_size=20),
    tlvs,
    st.booleans(),
)
mo_pdus = st.builds(
    lambda seq, sender, coding, esm, message, t: codec.make(
        Cmd.DELIVER_SM,
        seq,
        source_addr=sender,
        destination_addr="30311",
        esm_class=esm,
        data_coding=coding,
        short_message=message,
        tlvs=t,
    ),
    st.integers(0, 2**31),
    st.text("0123456789+", max_size=20),
    st.sampled_from([0, 1, 3, 4, 8, 0xF0]) | st.integers(0, 255),
    st.sampled_from([0, 0x40, 0x04, 0x44]) | st.integers(0, 255),
    st.one_of(
        st.binary(max_size=254),
        st.builds(
            lambda ref, total, n, rest: bytes([5, 0, 3, ref, total, n]) + rest,
            st.integers(0, 255),
            st.integers(0, 4),
            st.integers(0, 5),
            st.binary(max_size=40),
        ),
    ),
    tlvs,
)
random_frames = st.builds(
    _frame,
    st.sampled_from(COMMANDS) | st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=120),
)


def _mutate(frame: bytes, cuts: list[tuple[int, int]]) -> bytes:
    """Flip some of ``frame``'s bytes (never its length prefix) and keep the length consistent."""
    body = bytearray(frame)
    for position, value in cuts:
        if len(body) > 4:
            body[4 + position % (len(body) - 4)] = value
    return bytes(body)


valid_frames = st.one_of(receipt_pdus, mo_pdus)
mutated_frames = st.builds(
    _mutate, valid_frames, st.lists(st.tuples(st.integers(0, 500), st.integers(0, 255)), max_size=4)
)
frames = st.one_of(random_frames, valid_frames, mutated_frames)


# --- the codec -----------------------------------------------------------------------------------


def decoder(frame: bytes) -> None:
    try:
        p = codec.decode(frame)
    except codec.PduError as exc:
        assert isinstance(exc.status, int)
        return
    assert p.command_id in COMMANDS and 0 <= p.sequence < 2**32


def frame_buffer(case: tuple[bytes, list[int]]) -> None:
    """Whole frames in, whatever the chunking; an impossible length is a PduError, never another."""
    stream, cuts = case
    buffer = codec.FrameBuffer()
    out: list[bytes] = []
    points = sorted({min(c, len(stream)) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    try:
        for piece in pieces:
            out += buffer.feed(piece)
    except codec.PduError:
        pass
    joined = b"".join(out)
    assert stream.startswith(joined)
    for frame in out:
        assert int.from_bytes(frame[:4], "big") == len(frame)


def round_trip(case: tuple[str, str, bytes, dict]) -> None:
    source, destination, message, extra = case
    frame = codec.make(
        Cmd.DELIVER_SM, 7, source_addr=source, destination_addr=destination, short_message=message, tlvs=extra
    )
    p = codec.decode(frame)
    assert (p.fields["source_addr"], p.fields["destination_addr"]) == (source, destination)
    assert p.fields["short_message"] == message and p.tlvs == extra


# --- one connection, with the real inbound side ----------------------------------------------


class _Transport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


_LOOP = asyncio.new_event_loop()
_CONFIG = SessionConfig(carrier="fuzz", host="127.0.0.1", port=1, system_id="smsgw", password="pw")


async def _connection_case(stream: list[bytes]) -> None:
    events = AcknowledgingEvents()
    inbound = Inbound(events, ReceiptIdRelations({"fuzz": Relation.SAME}))
    session = SmppSession(
        _CONFIG, lambda _s, p, respond, patient: inbound.deliver("fuzz", p, respond, patient)
    )
    connection = Connection(session)
    transport = _Transport()
    connection.connection_made(transport)
    buffer = codec.FrameBuffer()
    expected: list[tuple[int, int]] = []
    for chunk in stream:
        try:
            handled = buffer.feed(chunk)
        except codec.PduError:
            break  # the connection closes on a corrupt stream (tested through data_received below)
        for frame in handled:
            _, cid, _, seq = HEADER.unpack_from(frame)
            connection._handle_frame(frame)  # raises nothing, whatever the frame
            if cid in (Cmd.DELIVER_SM, Cmd.DATA_SM):
                expected.append((cid | RESPONSE_BIT, seq))
            if connection.closed:
                break
        if connection.closed:
            break
    connection.flush()
    answers = codec.FrameBuffer().feed(bytes(transport.out))
    got = [HEADER.unpack_from(a)[1::2] for a in answers]  # (command_id, sequence)
    deliver_answers = [a for a in got if a[0] in (Cmd.DELIVER_SM_RESP, Cmd.DATA_SM_RESP)]
    assert sorted(deliver_answers) == sorted(expected)  # every deliver_sm / data_sm answered, once
    # and the same bytes through data_received, however they are cut, raise nothing either
    again = Connection(session)
    again.connection_made(_Transport())
    for chunk in stream:
        again.data_received(chunk)
        if again.closed:
            break


def connection_frames(stream: list[bytes]) -> None:
    _LOOP.run_until_complete(_connection_case(stream))


streams = st.lists(frames, min_size=1, max_size=6).flatmap(
    lambda fs: st.just(b"".join(fs)).flatmap(
        lambda data: st.lists(st.integers(0, len(data)), max_size=4).map(
            lambda cuts: [
                data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)
            ]
        )
    )
)


# --- receipts ------------------------------------------------------------------------------------


def receipt_reader(frame: bytes) -> None:
    p = codec.decode(frame)
    read = read_receipt(p)
    if isinstance(read, Receipt):
        assert usable(read.message_id)
        assert read.error is None or len(read.error) <= MAX_ERROR_LENGTH
        for relation in (
            Relation.SAME,
            Relation.SUBMIT_DECIMAL_RECEIPT_HEX,
            Relation.SUBMIT_HEX_RECEIPT_DECIMAL,
        ):
            form = submitted_form(read.message_id, relation)
            assert form is None or usable(form)
        candidate_forms(read.message_id)
    else:
        assert read is None or isinstance(read, UnusableId)


async def _answered(frame: bytes) -> list[int]:
    statuses: list[int] = []
    Inbound(AcknowledgingEvents(), ReceiptIdRelations()).deliver("fuzz", codec.decode(frame), statuses.append)
    return statuses


def receipt_answer(frame: bytes) -> None:
    """Every receipt, usable or not, is answered once with ESME_ROK (the handler stores at once)."""
    assert _LOOP.run_until_complete(_answered(frame)) == [Status.ESME_ROK]


PROPERTIES = [
    Property("pdu decoder", st.one_of(st.binary(max_size=300), frames), decoder),
    Property(
        "frame buffer",
        st.tuples(st.binary(max_size=400) | frames, st.lists(st.integers(0, 400))),
        frame_buffer,
    ),
    Property(
        "pdu round trip",
        st.tuples(
            c_strings.filter(lambda s: len(s.encode("latin-1")) <= 20),
            c_strings.filter(lambda s: len(s.encode("latin-1")) <= 20),
            st.binary(max_size=254),
            tlvs,
        ),
        round_trip,
    ),
    Property("connection frames", streams, connection_frames),
    Property("receipt parser", receipt_pdus, receipt_reader),
    Property("receipt answered", receipt_pdus, receipt_answer),
]
