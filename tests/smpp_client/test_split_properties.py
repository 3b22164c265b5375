"""Properties of what the client puts on the wire: any text, split into submit_sm bodies by a
carrier (UDH 8/16, SAR, message_payload), decoded back from those bodies and reassembled, is the
text it started as; no part exceeds 140 octets over the air; no part ends inside an escape
sequence or a surrogate pair."""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from smpp_client.concat import Part, concat_info_from_tlvs, on_air_octets, parse_udh
from smpp_client.config import CarrierConfig
from smpp_client.constants import ESM_UDHI, Cmd, Tlv
from smpp_client.pdu import decode, with_header
from smpp_client.reassembly import Reassembler
from smpp_client.submit_parts import PartEncoder
from textcodec import gsm0338
from textcodec.encoding import decode_payload
from textcodec.segments import ConcatMethod

ALPHABET = st.one_of(
    st.sampled_from(sorted(gsm0338.CHARSET)),
    st.sampled_from("€[]{}~|^\\\x0c"),
    st.sampled_from("áíóúÁÍÓÚéñü¿¡"),
    st.sampled_from("😀👍🇲🇽“”—…"),
    st.characters(exclude_categories=["Cs"]),
)
GSM_HEAVY = st.one_of(st.sampled_from(sorted(gsm0338.CHARSET)), st.sampled_from("€[]{}~|^\\\x0c"))
TEXT = st.one_of(
    st.text(alphabet=ALPHABET, max_size=600),
    st.text(alphabet=ALPHABET, min_size=60, max_size=700),  # long: several UCS-2 parts
    st.text(alphabet=GSM_HEAVY, min_size=150, max_size=1200),  # long GSM with escapes at the seams
)
ENCODERS = {
    method: PartEncoder(
        CarrierConfig(
            name=method, host="x", port=1, system_id="s", password="p", source_addr="30311", concat=method
        )
    )
    for method in ConcatMethod
}


@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from(list(ConcatMethod)), st.sampled_from(["+525512345678", "+525587654321"]))
def test_any_text_survives_the_wire(text, method, msisdn):
    job = ENCODERS[method].encode(msisdn, text)  # the parts a carrier of that method sends
    event(f"{job.encoding}, {'one part' if len(job.bodies) == 1 else 'several parts'}")
    pdus = [decode(with_header(Cmd.SUBMIT_SM, i + 1, body)) for i, body in enumerate(job.bodies)]
    assert all(p["destination_addr"] == msisdn[1:] for p in pdus)
    data_coding = pdus[0]["data_coding"]
    assert job.encoding == ("gsm7" if data_coding == 0 else "ucs2")
    reassembler = Reassembler()
    whole = None
    for p in reversed(pdus):
        sm = p["short_message"]
        if p["esm_class"] & ESM_UDHI:
            info, chunk = parse_udh(sm)
        elif Tlv.SAR_MSG_REF_NUM in p.tlvs:
            info, chunk = concat_info_from_tlvs(p.tlvs), sm
        else:
            info, chunk = None, sm or p.tlvs.get(Tlv.MESSAGE_PAYLOAD, b"")
        if info is None:
            assert len(pdus) == 1
            whole = [chunk]
            break
        # each part stands alone: no escape sequence nor surrogate pair cut at its end
        if data_coding == 0:
            trailing_esc = len(chunk) - len(chunk.rstrip(b"\x1b"))
            assert trailing_esc % 2 == 0
        elif chunk:
            assert not 0xD8 <= chunk[-2] <= 0xDB  # a high surrogate never ends a part
        result = reassembler.add(("k",), info, chunk, 0.0)
        if result is not None:
            whole = result
        part = Part(sm, p["esm_class"], dict(p.tlvs), info.seq, info.total)
        assert on_air_octets(part, data_coding) <= 140
    assert whole is not None
    assert decode_payload(b"".join(whole), data_coding) == text
    if method is not ConcatMethod.PAYLOAD:
        assert len(pdus) == job.segments
    assert sum(job.costs) == job.segments
