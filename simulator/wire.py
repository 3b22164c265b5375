"""SMPP framing the simulator writes by hand on its hot paths: command ids, headers, bodiless responses."""

from __future__ import annotations

import struct

from smpp_client.constants import Cmd, Status, Tlv

HEADER = struct.Struct(">IIII")
pack_header = HEADER.pack
unpack_body_header = struct.Struct(">III").unpack_from  # command_id, status, sequence after the length
unpack_length = struct.Struct(">I").unpack_from

RESP = 0x80000000
SUBMIT_SM = int(Cmd.SUBMIT_SM)
SUBMIT_SM_RESP = int(Cmd.SUBMIT_SM_RESP)
DELIVER_SM = int(Cmd.DELIVER_SM)
DELIVER_SM_RESP = int(Cmd.DELIVER_SM_RESP)
GENERIC_NACK = int(Cmd.GENERIC_NACK)
ENQUIRE_LINK = int(Cmd.ENQUIRE_LINK)
ENQUIRE_LINK_RESP = int(Cmd.ENQUIRE_LINK_RESP)
UNBIND = int(Cmd.UNBIND)
UNBIND_RESP = int(Cmd.UNBIND_RESP)
QUERY_SM = int(Cmd.QUERY_SM)
QUERY_SM_RESP = int(Cmd.QUERY_SM_RESP)
CANCEL_SM = int(Cmd.CANCEL_SM)
CANCEL_SM_RESP = int(Cmd.CANCEL_SM_RESP)

TX, RX = 1, 2  # bits of a session's bind
BIND_KINDS = {
    int(Cmd.BIND_TRANSMITTER): (TX, "transmitter"),
    int(Cmd.BIND_RECEIVER): (RX, "receiver"),
    int(Cmd.BIND_TRANSCEIVER): (TX | RX, "transceiver"),
}

ROK = int(Status.ESME_ROK)
# deliver_sm_resp statuses after which the SMSC tries again later
TEMPORARY = frozenset(
    int(s) for s in (Status.ESME_RX_T_APPN, Status.ESME_RMSGQFUL, Status.ESME_RTHROTTLED, Status.ESME_RSYSERR)
)
SAR_MSG_REF_NUM = int(Tlv.SAR_MSG_REF_NUM)
MESSAGE_PAYLOAD = int(Tlv.MESSAGE_PAYLOAD)
SC_INTERFACE_VERSION = struct.pack(">HHB", Tlv.SC_INTERFACE_VERSION, 1, 0x34)
MAX_SEQ = 0x7FFFFFFF


def empty_resp(command_id: int, status: int, seq: int) -> bytes:
    """A PDU with an empty body (errors, and the responses that have no body)."""
    return pack_header(16, command_id, status, seq)
