"""One bind against a raw SMSC: window, correlation, timeouts, keep-alive, hostile input, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time

import pytest

from smpp_client import pdu as codec
from smpp_client.config import SessionConfig
from smpp_client.constants import Cmd, Status, Tlv
from smpp_client.errors import INVALID_MESSAGE_ID, LINK_LOST, RESPONSE_TIMEOUT
from smpp_client.session import SessionListener, SmppSession

from .raw_smsc import RawSmsc, Recorder, header

SUBMIT = {"source_addr": "30311", "destination_addr": "525512345678", "short_message": b"hola"}


class Events(SessionListener):
    def __init__(self):
        self.bound = asyncio.Event()
        self.down = asyncio.Event()
        self.binds = 0
        self.downs = 0
        self.delivered: list = []  # what the default deliver handler was given

    def session_bound(self, session):
        self.binds += 1
        self.down.clear()
        self.bound.set()

    def session_down(self, session):
        self.downs += 1
        self.bound.clear()
        self.down.set()


def make_session(port: int, deliver=None, **overrides):
    config = SessionConfig(
        carrier="raw",
        host="127.0.0.1",
        port=port,
        system_id="smsgw",
        password="smsgw",
        window=overrides.pop("window", 10),
        enquire_link_seconds=overrides.pop("enquire_link_seconds", 30),
        response_timeout_seconds=overrides.pop("response_timeout_seconds", 5),
        reconnect_min_seconds=overrides.pop("reconnect_min_seconds", 0.02),
        reconnect_max_seconds=overrides.pop("reconnect_max_seconds", 0.1),
        **overrides,
    )
    events = Events()

    def on_deliver(session, p, respond, patient=False):
        events.delivered.append(p)
        respond(Status.ESME_ROK)

    session = SmppSession(config, deliver or on_deliver, listener=events)
    return session, events


@contextlib.asynccontextmanager
async def running(session: SmppSession):
    task = asyncio.create_task(session.run())
    try:
        yield task
    finally:
        await session.stop(0.1)  # the raw SMSC does not answer unbind unless a test does
        await asyncio.wait_for(task, 5)


def submit(session: SmppSession) -> Recorder:
    entry = Recorder()
    session.send(Cmd.SUBMIT_SM, entry, **SUBMIT)
    return entry


async def test_window_correlation_and_out_of_order_answers():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port, window=3)
        async with running(session):
            conn = await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            assert session.free_window == 3
            entries = [submit(session) for _ in range(3)]
            assert session.free_window == 0 and session.in_flight == 3
            requests = [await conn.read_until(Cmd.SUBMIT_SM) for _ in range(3)]
            assert len({r.sequence for r in requests}) == 3
            for request, message_id in zip(reversed(requests), ("c", "b", "a"), strict=True):
                conn.respond(request, message_id=message_id)
            results = [await e.wait() for e in entries]
            assert results == [("answer", 0, "a"), ("answer", 0, "b"), ("answer", 0, "c")]
            assert session.free_window == 3


async def test_unknown_tlv_is_kept_and_the_receipt_acknowledged():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port)
        async with running(session):
            conn = await smsc.accept_bound()
            body = codec.make(
                Cmd.DELIVER_SM,
                77,
                esm_class=0x04,
                short_message=b"id:1 stat:DELIVRD",
                tlvs={0x1403: b"\x01\x02", 0x3177: b"vendor", Tlv.RECEIPTED_MESSAGE_ID: b"1\x00"},
            )
            conn.send(body)
            resp = await conn.read_until(Cmd.DELIVER_SM_RESP)
            assert (resp.sequence, resp.status) == (77, 0)
            (p,) = events.delivered
            assert p.tlvs[0x1403] == b"\x01\x02" and p.tlvs[0x3177] == b"vendor"


def _head(frame: bytes) -> tuple[int, int, int]:
    """(command_id, status, sequence) of a frame the codec may not decode (submit_multi_resp)."""
    _, command_id, status, seq = struct.unpack_from(">IIII", frame)
    return command_id, status, seq


async def _next_head(conn, timeout: float = 5.0) -> tuple[int, int, int]:
    while True:
        head = _head(await conn.read_frame(timeout))
        if head[0] != Cmd.ENQUIRE_LINK:
            return head


# what an SMSC may send an ESME, and what it is answered (None: nothing, it has no response)
SMSC_REQUESTS = [
    ("unknown", header(16, 0x00000099, 0, 42), (Cmd.GENERIC_NACK, Status.ESME_RINVCMDID)),
    ("query_sm", codec.make(Cmd.QUERY_SM, 42, message_id="x"), (Cmd.QUERY_SM_RESP, Status.ESME_RINVCMDID)),
    ("submit_sm", codec.make(Cmd.SUBMIT_SM, 42, **SUBMIT), (Cmd.SUBMIT_SM_RESP, Status.ESME_RINVCMDID)),
    (
        "replace_sm",
        codec.make(Cmd.REPLACE_SM, 42, message_id="x", short_message=b"y"),
        (Cmd.REPLACE_SM_RESP, Status.ESME_RINVCMDID),
    ),
    ("cancel_sm", codec.make(Cmd.CANCEL_SM, 42, message_id="x"), (Cmd.CANCEL_SM_RESP, Status.ESME_RINVCMDID)),
    (
        "submit_multi",
        header(16 + 4, Cmd.SUBMIT_MULTI, 0, 42) + b"\x00\x01\x01\x00",
        (Cmd.SUBMIT_MULTI_RESP, Status.ESME_RINVCMDID),
    ),
    (
        "bind_transceiver",
        codec.make(Cmd.BIND_TRANSCEIVER, 42, system_id="x", password="y"),
        (Cmd.BIND_TRANSCEIVER_RESP, Status.ESME_RALYBND),
    ),
    (
        "bind_receiver",
        codec.make(Cmd.BIND_RECEIVER, 42, system_id="x", password="y"),
        (Cmd.BIND_RECEIVER_RESP, Status.ESME_RALYBND),
    ),
    ("outbind", codec.make(Cmd.OUTBIND, 42, system_id="smsc", password="pw"), (Cmd.GENERIC_NACK, 4)),
    ("truncated outbind", header(16 + 2, Cmd.OUTBIND, 0, 42) + b"ab", (Cmd.GENERIC_NACK, 4)),
    ("alert_notification", codec.make(Cmd.ALERT_NOTIFICATION, 42, source_addr="5255", esme_addr="1"), None),
    ("stray submit_sm_resp", codec.make(Cmd.SUBMIT_SM_RESP, 42, message_id="zz"), None),
    ("stray deliver_sm_resp", codec.make(Cmd.DELIVER_SM_RESP, 42, message_id=""), None),
    ("stray query_sm_resp", header(16, Cmd.QUERY_SM_RESP, Status.ESME_RQUERYFAIL, 42), None),
    ("stray generic_nack", codec.generic_nack(42, Status.ESME_RSYSERR), None),
    ("stray bind_transceiver_resp", codec.make(Cmd.BIND_TRANSCEIVER_RESP, 42, system_id="x"), None),
]


@pytest.mark.parametrize(
    ("sent", "answer"), [(r[1], r[2]) for r in SMSC_REQUESTS], ids=[r[0] for r in SMSC_REQUESTS]
)
async def test_every_pdu_an_smsc_may_send_is_answered_or_dropped_and_the_link_stays_up(sent, answer):
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port)
        async with running(session):
            conn = await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            conn.send(sent)
            conn.send(codec.make(Cmd.ENQUIRE_LINK, 43))  # answered after whatever the PDU gets
            if answer is not None:
                assert await _next_head(conn) == (*answer, 42)
            assert await _next_head(conn) == (Cmd.ENQUIRE_LINK_RESP, 0, 43)
            entry = submit(session)
            conn.respond(await conn.read_until(Cmd.SUBMIT_SM), message_id="ok")
            assert await entry.wait() == ("answer", 0, "ok")
            assert smsc.accepted == 1 and session.is_bound
            assert sum(session.unexpected.values()) == 1


async def test_a_response_of_another_kind_never_answers_a_submit():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port)
        async with running(session):
            conn = await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            entry = submit(session)
            request = await conn.read_until(Cmd.SUBMIT_SM)
            for command in (Cmd.DELIVER_SM_RESP, Cmd.DATA_SM_RESP, Cmd.ENQUIRE_LINK_RESP, Cmd.QUERY_SM_RESP):
                conn.send(header(17, command, 0, request.sequence) + b"\x00")
            conn.send(codec.make(Cmd.ENQUIRE_LINK, 50))
            await conn.read_until(Cmd.ENQUIRE_LINK_RESP)
            assert not entry.done.is_set() and session.in_flight == 1
            conn.respond(request, message_id="real")
            assert await entry.wait() == ("answer", 0, "real")
            assert session.unexpected == {"deliver_sm_resp": 1, "data_sm_resp": 1, "query_sm_resp": 1}


class IdEvents(Events):
    def __init__(self):
        super().__init__()
        self.unusable: list[bytes] = []

    def unusable_message_id(self, session, raw):
        self.unusable.append(raw)


@pytest.mark.parametrize(
    ("body", "usable"),
    [
        (b"a" * 64 + b"\x00", "a" * 64),
        (b"0123abc-_:.", "0123abc-_:."),  # no NUL: forgiven
        (b"a" * 65 + b"\x00", None),  # 65 characters: 66 octets with the NUL
        (b"b" * 65, None),
        (b"9" * 5000 + b"\x00", None),
        (b"caf\xe9\x00", None),  # non-ASCII
        (b"ab cd\x00", None),
        (b"a\x01b\x00", None),
        (b"\x00", None),  # empty
        (b"", None),
    ],
    ids=["64", "no-nul", "65", "65-no-nul", "5000-digits", "latin1", "space", "control", "empty", "no-body"],
)
async def test_an_unusable_message_id_fails_the_submit_and_never_reaches_the_caller(body, usable):
    async with RawSmsc() as smsc:
        config = SessionConfig(carrier="raw", host="127.0.0.1", port=smsc.port, system_id="s", password="p")
        events = IdEvents()
        session = SmppSession(config, lambda s, p, respond: respond(0), listener=events)
        async with running(session):
            conn = await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            entry = submit(session)
            request = await conn.read_until(Cmd.SUBMIT_SM)
            conn.send(header(16 + len(body), Cmd.SUBMIT_SM_RESP, 0, request.sequence) + body)
            if usable is None:
                assert await entry.wait() == ("answer", INVALID_MESSAGE_ID, "")
                assert events.unusable == [body.split(b"\x00")[0]]
                assert session.bad_message_ids == 1
            else:
                assert await entry.wait() == ("answer", 0, usable)
                assert events.unusable == []
            assert session.is_bound and session.in_flight == 0


async def test_data_sm_reaches_the_handler_and_gets_data_sm_resp():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port)
        async with running(session):
            conn = await smsc.accept_bound()
            conn.send(
                codec.make(
                    Cmd.DATA_SM,
                    61,
                    source_addr="525512345678",
                    destination_addr="30311",
                    tlvs={Tlv.MESSAGE_PAYLOAD: b"AYUDA"},
                )
            )
            assert _head(await conn.read_frame()) == (Cmd.DATA_SM_RESP, 0, 61)
            (p,) = events.delivered
            assert p.command_id == Cmd.DATA_SM and p.tlvs[Tlv.MESSAGE_PAYLOAD] == b"AYUDA"
            assert session.data_sm == 1
            # one it cannot decode gets data_sm_resp with the error
            conn.send(header(16 + 2, Cmd.DATA_SM, 0, 62) + b"\x00\x01")
            assert _head(await conn.read_frame()) == (Cmd.DATA_SM_RESP, Status.ESME_RINVCMDLEN, 62)


async def test_a_truncated_pdu_gets_its_error_response_and_the_link_stays_up():
    async with RawSmsc() as smsc:
        session, _events = make_session(smsc.port)
        async with running(session):
            conn = await smsc.accept_bound()
            # a deliver_sm whose body stops after three fields
            body = b"\x00\x01\x01"
            conn.send(header(16 + len(body), Cmd.DELIVER_SM, 0, 9) + body)
            resp = await conn.read_until(Cmd.DELIVER_SM_RESP)
            assert resp.sequence == 9 and resp.status == Status.ESME_RINVCMDLEN
            assert session.is_bound and session.bad_pdus == 1


@pytest.mark.parametrize(
    "garbage",
    [
        header(3, Cmd.SUBMIT_SM_RESP),  # impossible command_length
        header(0x7FFFFFFF, Cmd.DELIVER_SM),  # absurdly long
        b"\xff" * 40,  # noise
    ],
    ids=["short-length", "huge-length", "noise"],
)
async def test_garbage_resets_the_link_cleanly_and_fails_the_window(garbage):
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port)
        async with running(session):
            conn = await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            entries = [submit(session) for _ in range(3)]
            for _ in range(3):
                await conn.read_until(Cmd.SUBMIT_SM)
            conn.send(garbage)
            nack = await conn.read_until(Cmd.GENERIC_NACK)
            assert nack.status == Status.ESME_RINVCMDLEN
            assert await conn.closed()
            assert [await e.wait() for e in entries] == [("fail", LINK_LOST)] * 3
            # a clean reconnection: a new bind, and the session works again
            conn2 = await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            entry = submit(session)
            conn2.respond(await conn2.read_until(Cmd.SUBMIT_SM), message_id="again")
            assert await entry.wait() == ("answer", 0, "again")
            assert events.downs == 1 and session.links_lost == 1


async def test_an_unreadable_answer_still_answers_its_request():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port)
        async with running(session):
            conn = await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            entry = submit(session)
            request = await conn.read_until(Cmd.SUBMIT_SM)
            # message_id without its NUL terminator: taken leniently
            conn.send(header(16 + 5, Cmd.SUBMIT_SM_RESP, 0, request.sequence) + b"abcde")
            assert await entry.wait() == ("answer", 0, "abcde")
            # an error answer with no body
            entry = submit(session)
            request = await conn.read_until(Cmd.SUBMIT_SM)
            conn.send(header(16, Cmd.SUBMIT_SM_RESP, Status.ESME_RTHROTTLED, request.sequence))
            assert await entry.wait() == ("answer", Status.ESME_RTHROTTLED, "")
            # a generic_nack to a submit
            entry = submit(session)
            request = await conn.read_until(Cmd.SUBMIT_SM)
            conn.send(codec.generic_nack(request.sequence, Status.ESME_RINVCMDLEN))
            assert await entry.wait() == ("answer", Status.ESME_RINVCMDLEN, "")


async def test_response_timeout_frees_the_slot_and_repeated_timeouts_reset_the_link():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port, response_timeout_seconds=0.2, max_consecutive_timeouts=2)
        async with running(session):
            conn = await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            first = submit(session)
            late = await conn.read_until(Cmd.SUBMIT_SM)
            assert await first.wait() == ("fail", RESPONSE_TIMEOUT)
            assert session.in_flight == 0 and session.is_bound
            # an answer after the timeout is ignored (the message went back to the queue)
            conn.respond(late, message_id="late")
            answered = submit(session)
            conn.respond(await conn.read_until(Cmd.SUBMIT_SM), message_id="ok")
            assert await answered.wait() == ("answer", 0, "ok")
            # two in a row with nothing answered in between: the link is reset
            entries = [submit(session), submit(session)]
            assert [await e.wait() for e in entries] == [("fail", RESPONSE_TIMEOUT)] * 2
            assert await conn.closed()
            await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            assert session.timeouts == 3


async def test_refused_binds_back_off_exponentially():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port, reconnect_min_seconds=0.05, reconnect_max_seconds=0.4)
        async with running(session):
            stamps = []
            for _ in range(4):
                conn = await smsc.accept()
                stamps.append(time.monotonic())
                await conn.bind(Status.ESME_RBINDFAIL)
            await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            gaps = [b - a for a, b in itertools.pairwise(stamps)]
            # jittered delay in [0.5, 1] x (0.05, 0.1, 0.2): never a hot loop, growing
            assert gaps[0] >= 0.02 and gaps[2] >= 0.09
            assert session.bind_failures == 4
            assert "ESME_RBINDFAIL" in (session.last_error or "ESME_RBINDFAIL")


async def test_enquire_link_when_idle_and_a_dead_peer_drops_the_link():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port, enquire_link_seconds=0.1, response_timeout_seconds=0.3)
        async with running(session):
            conn = await smsc.accept_bound()
            probe = await conn.read(timeout=2)
            assert probe.command_id == Cmd.ENQUIRE_LINK
            conn.respond(probe)
            probe = await conn.read(timeout=2)
            assert probe.command_id == Cmd.ENQUIRE_LINK
            # not answered: the link is dropped and bound again
            assert await conn.closed(timeout=3)
            await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)


async def test_smsc_enquire_link_and_unbind_are_answered():
    async with RawSmsc() as smsc:
        session, _events = make_session(smsc.port)
        async with running(session):
            conn = await smsc.accept_bound()
            conn.send(codec.make(Cmd.ENQUIRE_LINK, 5))
            resp = await conn.read_until(Cmd.ENQUIRE_LINK_RESP)
            assert resp.sequence == 5
            conn.send(codec.make(Cmd.UNBIND, 6))
            resp = await conn.read_until(Cmd.UNBIND_RESP)
            assert (resp.sequence, resp.status) == (6, 0)
            assert await conn.closed()
            await smsc.accept_bound()  # and it comes back


async def test_deliver_sm_is_answered_when_the_handler_says_so():
    later = []
    arrived = asyncio.Event()

    def deliver(session, p, respond, patient=False):
        later.append(respond)
        arrived.set()

    async with RawSmsc() as smsc:
        session, _events = make_session(smsc.port, deliver=deliver)
        async with running(session):
            conn = await smsc.accept_bound()
            conn.send(codec.make(Cmd.DELIVER_SM, 11, short_message=b"hola"))
            await asyncio.wait_for(arrived.wait(), 5)
            with pytest.raises(asyncio.TimeoutError):
                await conn.read(timeout=0.1)
            later[0](Status.ESME_ROK)
            later[0](Status.ESME_RSYSERR)  # a second answer is ignored
            resp = await conn.read_until(Cmd.DELIVER_SM_RESP)
            assert (resp.sequence, resp.status) == (11, 0)
            with pytest.raises(asyncio.TimeoutError):
                await conn.read(timeout=0.1)


async def test_a_failing_handler_answers_a_temporary_error():
    def deliver(session, p, respond, patient=False):
        raise RuntimeError("bug")

    async with RawSmsc() as smsc:
        session, _events = make_session(smsc.port, deliver=deliver)
        async with running(session):
            conn = await smsc.accept_bound()
            conn.send(codec.make(Cmd.DELIVER_SM, 12, short_message=b"x"))
            resp = await conn.read_until(Cmd.DELIVER_SM_RESP)
            assert resp.status == Status.ESME_RX_T_APPN
            assert session.is_bound


async def test_stop_waits_for_the_responses_in_flight_then_unbinds():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port)
        task = asyncio.create_task(session.run())
        conn = await smsc.accept_bound()
        await asyncio.wait_for(events.bound.wait(), 5)
        entries = [submit(session) for _ in range(3)]
        requests = [await conn.read_until(Cmd.SUBMIT_SM) for _ in range(3)]
        stopping = asyncio.create_task(session.stop(5))
        await asyncio.sleep(0.1)
        assert not session.can_submit and not stopping.done()
        for i, request in enumerate(requests):
            conn.respond(request, message_id=f"m{i}")
        unbind = await conn.read_until(Cmd.UNBIND)
        conn.respond(unbind)
        await asyncio.wait_for(stopping, 5)
        assert [await e.wait() for e in entries] == [("answer", 0, f"m{i}") for i in range(3)]
        await asyncio.wait_for(task, 5)
        assert session.state == "closed"


async def test_bind_modes_send_their_bind_command():
    async with RawSmsc() as smsc:
        for kind, command in (("transmitter", Cmd.BIND_TRANSMITTER), ("receiver", Cmd.BIND_RECEIVER)):
            session, events = make_session(smsc.port, bind_kind=kind)
            async with running(session):
                conn = await smsc.accept()
                p = await conn.bind()
                assert p.command_id == command
                await asyncio.wait_for(events.bound.wait(), 5)
                assert session.can_submit is (kind == "transmitter")


async def test_many_submits_in_one_turn_leave_in_one_write():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port, window=50)
        async with running(session):
            conn = await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            entries = [submit(session) for _ in range(50)]
            data = await asyncio.wait_for(conn.reader.read(1 << 20), 5)
            frames = codec.FrameBuffer().feed(data)
            assert len(frames) == 50  # one segment on loopback: they were written together
            for frame in frames:
                seq = struct.unpack_from(">I", frame, 12)[0]
                conn.send(codec.make(Cmd.SUBMIT_SM_RESP, seq, message_id=str(seq)))
            assert [(await e.wait())[1] for e in entries] == [0] * 50


async def test_a_request_of_the_caller_gets_its_own_answer_even_an_enquire_link():
    async with RawSmsc() as smsc:
        session, events = make_session(smsc.port)
        async with running(session):
            conn = await smsc.accept_bound()
            await asyncio.wait_for(events.bound.wait(), 5)
            answer = asyncio.ensure_future(session.request(Cmd.ENQUIRE_LINK))
            probe = await conn.read_until(Cmd.ENQUIRE_LINK)
            conn.respond(probe)
            assert (await asyncio.wait_for(answer, 5)).command_id == Cmd.ENQUIRE_LINK_RESP
            assert session.unexpected == {}


async def test_an_smsc_that_waits_for_each_answer_is_told_apart_from_one_that_does_not():
    """The handler hears whether answering may wait (patient): past the first deliveries, only
    below the most deliver_sm the SMSC ever left unanswered at once; at that mark (1 for an SMSC
    that waits for each answer) it may be waiting, so the answer should not."""
    from smpp_client.connection import PATIENCE_PROBE

    seen: list[bool] = []
    held: asyncio.Queue = asyncio.Queue()

    def deliver(session, p, respond, patient=False):
        seen.append(patient)
        held.put_nowait(respond)

    def receipt(seq: int) -> bytes:
        return codec.make(
            Cmd.DELIVER_SM, seq, esm_class=0x04, short_message=f"id:{seq} stat:DELIVRD".encode()
        )

    count = PATIENCE_PROBE + 2
    async with RawSmsc() as smsc:
        session, _ = make_session(smsc.port, deliver=deliver)
        async with running(session):
            conn = await smsc.accept_bound()
            for seq in range(1, count + 1):  # one at a time, each after its answer
                conn.send(receipt(seq))
                respond = await asyncio.wait_for(held.get(), 5)
                respond(Status.ESME_ROK)
                await conn.read_until(Cmd.DELIVER_SM_RESP)
            assert seen[:PATIENCE_PROBE] == [True] * PATIENCE_PROBE and seen[-2:] == [False, False]
    seen.clear()
    async with RawSmsc() as smsc:
        session, _ = make_session(smsc.port, deliver=deliver)
        async with running(session):
            conn = await smsc.accept_bound()
            for seq in range(1, count + 1):  # all sent before any answer
                conn.send(receipt(seq))
            for _ in range(count):
                (await asyncio.wait_for(held.get(), 5))(Status.ESME_ROK)
            assert seen[:PATIENCE_PROBE] == [True] * PATIENCE_PROBE
            assert seen[-2:] == [False, False]  # each a new mark: the SMSC's window may be full
            for seq in range(count + 1, count + 3):  # below the mark: it can send more
                conn.send(receipt(seq))
            for _ in range(2):
                (await asyncio.wait_for(held.get(), 5))(Status.ESME_ROK)
            assert seen[-2:] == [True, True]
