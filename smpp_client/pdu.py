"""SMPP 3.4 PDU codec: bytes <-> :class:`Pdu`, with framing and strict validation.

Written for speed (the simulator and client both run it per message) and for hostile input:
every malformed PDU raises :class:`PduError` carrying the status a peer should answer with,
never another exception type.
"""

from __future__ import annotations

import struct

from .constants import RESPONSE_BIT, Cmd, Status

HEADER = struct.Struct(">IIII")
HEADER_LEN = 16
MAX_PDU_LEN = 65536 + 1024  # message_payload up to 64 KiB plus the mandatory fields

# Field kinds: "c" C-octet string (max length includes the NUL), "B" uint8,
# "sm" sm_length + short_message octets.
_SM_FIELDS = [
    ("service_type", "c6"),
    ("source_addr_ton", "B"),
    ("source_addr_npi", "B"),
    ("source_addr", "c21"),
    ("dest_addr_ton", "B"),
    ("dest_addr_npi", "B"),
    ("destination_addr", "c21"),
    ("esm_class", "B"),
    ("protocol_id", "B"),
    ("priority_flag", "B"),
    ("schedule_delivery_time", "c17"),
    ("validity_period", "c17"),
    ("registered_delivery", "B"),
    ("replace_if_present_flag", "B"),
    ("data_coding", "B"),
    ("sm_default_msg_id", "B"),
    ("short_message", "sm"),
]
_BIND = [
    ("system_id", "c16"),
    ("password", "c9"),
    ("system_type", "c13"),
    ("interface_version", "B"),
    ("addr_ton", "B"),
    ("addr_npi", "B"),
    ("address_range", "c41"),
]
_BIND_RESP = [("system_id", "c16")]
_MSGID = [("message_id", "c65")]

SCHEMAS: dict[int, list[tuple[str, str]]] = {
    Cmd.GENERIC_NACK: [],
    Cmd.BIND_RECEIVER: _BIND,
    Cmd.BIND_TRANSMITTER: _BIND,
    Cmd.BIND_TRANSCEIVER: _BIND,
    Cmd.BIND_RECEIVER_RESP: _BIND_RESP,
    Cmd.BIND_TRANSMITTER_RESP: _BIND_RESP,
    Cmd.BIND_TRANSCEIVER_RESP: _BIND_RESP,
    Cmd.OUTBIND: [("system_id", "c16"), ("password", "c9")],
    Cmd.UNBIND: [],
    Cmd.UNBIND_RESP: [],
    Cmd.ENQUIRE_LINK: [],
    Cmd.ENQUIRE_LINK_RESP: [],
    Cmd.SUBMIT_SM: _SM_FIELDS,
    Cmd.SUBMIT_SM_RESP: _MSGID,
    Cmd.DELIVER_SM: _SM_FIELDS,
    Cmd.DELIVER_SM_RESP: _MSGID,
    Cmd.QUERY_SM: [
        ("message_id", "c65"),
        ("source_addr_ton", "B"),
        ("source_addr_npi", "B"),
        ("source_addr", "c21"),
    ],
    Cmd.QUERY_SM_RESP: [
        ("message_id", "c65"),
        ("final_date", "c17"),
        ("message_state", "B"),
        ("error_code", "B"),
    ],
    Cmd.CANCEL_SM: [
        ("service_type", "c6"),
        ("message_id", "c65"),
        ("source_addr_ton", "B"),
        ("source_addr_npi", "B"),
        ("source_addr", "c21"),
        ("dest_addr_ton", "B"),
        ("dest_addr_npi", "B"),
        ("destination_addr", "c21"),
    ],
    Cmd.CANCEL_SM_RESP: [],
    Cmd.REPLACE_SM: [
        ("message_id", "c65"),
        ("source_addr_ton", "B"),
        ("source_addr_npi", "B"),
        ("source_addr", "c21"),
        ("schedule_delivery_time", "c17"),
        ("validity_period", "c17"),
        ("registered_delivery", "B"),
        ("sm_default_msg_id", "B"),
        ("short_message", "sm"),
    ],
    Cmd.REPLACE_SM_RESP: [],
    Cmd.DATA_SM: [
        ("service_type", "c6"),
        ("source_addr_ton", "B"),
        ("source_addr_npi", "B"),
        ("source_addr", "c65"),
        ("dest_addr_ton", "B"),
        ("dest_addr_npi", "B"),
        ("destination_addr", "c65"),
        ("esm_class", "B"),
        ("registered_delivery", "B"),
        ("data_coding", "B"),
    ],
    Cmd.DATA_SM_RESP: _MSGID,
    Cmd.ALERT_NOTIFICATION: [
        ("source_addr_ton", "B"),
        ("source_addr_npi", "B"),
        ("source_addr", "c65"),
        ("esme_addr_ton", "B"),
        ("esme_addr_npi", "B"),
        ("esme_addr", "c65"),
    ],
}

# Precompiled schemas: (name, kind, max) with kind 0 = uint8, 1 = C-string, 2 = short_message.
_COMPILED: dict[int, tuple[tuple[str, int, int], ...]] = {}
for _cid, _fields in SCHEMAS.items():
    _COMPILED[_cid] = tuple(
        (name, 0, 1) if kind == "B" else (name, 2, 254) if kind == "sm" else (name, 1, int(kind[1:]))
        for name, kind in _fields
    )


class PduError(Exception):
    """A PDU that cannot be accepted; ``status`` is what the peer should be told."""

    def __init__(self, status: int, message: str, command_id: int | None = None, sequence: int = 0):
        super().__init__(message)
        self.status = status
        self.command_id = command_id
        self.sequence = sequence


class Pdu:
    __slots__ = ("command_id", "fields", "sequence", "status", "tlvs")

    def __init__(
        self,
        command_id: int,
        sequence: int = 0,
        status: int = 0,
        fields: dict | None = None,
        tlvs: dict[int, bytes] | None = None,
    ):
        self.command_id = command_id
        self.sequence = sequence
        self.status = status
        self.fields = fields if fields is not None else {}
        self.tlvs = tlvs if tlvs is not None else {}

    def get(self, name: str, default=None):
        return self.fields.get(name, default)

    def __getitem__(self, name: str):
        return self.fields[name]

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    @property
    def name(self) -> str:
        try:
            return Cmd(self.command_id).name.lower()
        except ValueError:
            return f"0x{self.command_id:08x}"

    def response(self, status: int = 0, **fields) -> Pdu:
        return Pdu(self.command_id | RESPONSE_BIT, self.sequence, status, fields)

    def __repr__(self) -> str:
        head = f"Pdu({self.name}, seq={self.sequence}, status=0x{self.status:x}"
        return f"{head}, {self.fields}, tlvs={self.tlvs})"


def encode(pdu: Pdu) -> bytes:
    body = encode_body(pdu.command_id, pdu.fields, pdu.tlvs, pdu.status)
    return HEADER.pack(HEADER_LEN + len(body), pdu.command_id, pdu.status, pdu.sequence) + body


def encode_body(command_id: int, fields: dict, tlvs: dict | None = None, status: int = 0) -> bytes:
    """The PDU after its header (what :func:`with_header` completes for a sequence number)."""
    schema = _COMPILED.get(command_id)
    if schema is None:
        raise ValueError(f"cannot encode command 0x{command_id:08x}")
    out = bytearray()
    # A response with an error status may carry an empty body (bind_resp, submit_sm_resp).
    if not (status and command_id & RESPONSE_BIT and not fields):
        for name, kind, limit in schema:
            value = fields.get(name)
            if kind == 0:
                out.append(value or 0)
            elif kind == 1:
                raw = value.encode("latin-1") if isinstance(value, str) else (value or b"")
                if len(raw) >= limit:
                    raise ValueError(f"{name} longer than {limit - 1} octets")
                out += raw
                out.append(0)
            else:
                raw = value or b""
                if len(raw) > limit:
                    raise ValueError(f"{name} longer than {limit} octets")
                out.append(len(raw))
                out += raw
    if tlvs:
        for tag, value in tlvs.items():
            out += struct.pack(">HH", tag, len(value))
            out += value
    return bytes(out)


def with_header(command_id: int, sequence: int, body: bytes, status: int = 0) -> bytes:
    return HEADER.pack(HEADER_LEN + len(body), command_id, status, sequence) + body


def make(command_id: int, sequence: int, status: int = 0, tlvs: dict | None = None, **fields) -> bytes:
    return encode(Pdu(command_id, sequence, status, fields, tlvs))


def decode(frame: bytes) -> Pdu:
    """Decode one whole PDU (header included)."""
    if len(frame) < HEADER_LEN:
        raise PduError(Status.ESME_RINVCMDLEN, "PDU shorter than its header")
    length, command_id, status, sequence = HEADER.unpack_from(frame)
    if length != len(frame):
        raise PduError(Status.ESME_RINVCMDLEN, "command_length does not match", command_id, sequence)
    schema = _COMPILED.get(command_id)
    if schema is None:
        raise PduError(Status.ESME_RINVCMDID, f"unknown command_id 0x{command_id:08x}", command_id, sequence)
    fields: dict = {}
    pos = HEADER_LEN
    end = length
    if pos == end and (command_id & RESPONSE_BIT) and status:
        return Pdu(command_id, sequence, status, fields)
    try:
        for name, kind, limit in schema:
            if kind == 0:
                if pos >= end:
                    raise PduError(Status.ESME_RINVCMDLEN, f"body truncated at {name}", command_id, sequence)
                fields[name] = frame[pos]
                pos += 1
            elif kind == 1:
                nul = frame.find(b"\x00", pos, min(end, pos + limit))
                if nul < 0:
                    if end - pos < limit and frame.find(b"\x00", pos, end) < 0:
                        raise PduError(
                            Status.ESME_RINVCMDLEN, f"{name} has no NUL terminator", command_id, sequence
                        )
                    raise PduError(
                        Status.ESME_RINVPARLEN, f"{name} longer than {limit - 1}", command_id, sequence
                    )
                fields[name] = frame[pos:nul].decode("latin-1")
                pos = nul + 1
            else:
                if pos >= end:
                    raise PduError(
                        Status.ESME_RINVCMDLEN, "body truncated at sm_length", command_id, sequence
                    )
                sm_len = frame[pos]
                pos += 1
                if pos + sm_len > end:
                    raise PduError(Status.ESME_RINVMSGLEN, "short_message truncated", command_id, sequence)
                fields[name] = frame[pos : pos + sm_len]
                pos += sm_len
        tlvs: dict[int, bytes] = {}
        while pos < end:
            if end - pos < 4:
                raise PduError(Status.ESME_RINVOPTPARSTREAM, "truncated TLV header", command_id, sequence)
            tag, tlen = struct.unpack_from(">HH", frame, pos)
            pos += 4
            if pos + tlen > end:
                raise PduError(
                    Status.ESME_RINVOPTPARSTREAM, f"TLV 0x{tag:04x} truncated", command_id, sequence
                )
            tlvs[tag] = frame[pos : pos + tlen]
            pos += tlen
    except PduError:
        raise
    except Exception as exc:  # defensive: no decoding path may raise anything else
        raise PduError(Status.ESME_RSYSERR, f"undecodable PDU: {exc}", command_id, sequence) from exc
    return Pdu(command_id, sequence, status, fields, tlvs)


def generic_nack(sequence: int, status: int) -> bytes:
    return HEADER.pack(HEADER_LEN, Cmd.GENERIC_NACK, status, sequence)


class FrameBuffer:
    """Splits a byte stream into whole PDUs; rejects impossible lengths."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames = []
        pos = 0
        n = len(buf)
        while n - pos >= 4:
            length = int.from_bytes(buf[pos : pos + 4], "big")
            if length < HEADER_LEN or length > MAX_PDU_LEN:
                del buf[:pos]
                if frames:  # hand over the good PDUs first; the next feed reports the bad one
                    return frames
                sequence = int.from_bytes(buf[12:16], "big") if len(buf) >= HEADER_LEN else 0
                command_id = int.from_bytes(buf[4:8], "big") if len(buf) >= 8 else None
                message = f"impossible command_length {length}"
                raise PduError(Status.ESME_RINVCMDLEN, message, command_id, sequence)
            if n - pos < length:
                break
            frames.append(bytes(buf[pos : pos + length]))
            pos += length
        if pos:
            del buf[:pos]
        return frames


def tlv_int(value: bytes | None) -> int | None:
    return int.from_bytes(value, "big") if value else None


def tlv_cstr(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value.rstrip(b"\x00").decode("latin-1")
