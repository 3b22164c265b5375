"""Which SMPP answers are throttling, temporary, routing or permanent (reference.md 2.4)."""

from __future__ import annotations

import pytest

from smpp_client.constants import Status
from smpp_client.errors import (
    BAD_RESPONSE,
    LINK_LOST,
    NO_ROUTE,
    RESPONSE_TIMEOUT,
    ErrorClass,
    classify,
    error_name,
    parse_status,
    parse_statuses,
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status.ESME_ROK, ErrorClass.OK),
        (Status.ESME_RTHROTTLED, ErrorClass.THROTTLE),
        (Status.ESME_RMSGQFUL, ErrorClass.THROTTLE),
        (Status.ESME_RSYSERR, ErrorClass.TEMPORARY),
        (Status.ESME_RX_T_APPN, ErrorClass.TEMPORARY),
        (Status.ESME_RINVSCHED, ErrorClass.TEMPORARY),
        (LINK_LOST, ErrorClass.LINK),
        (RESPONSE_TIMEOUT, ErrorClass.LINK),
        (BAD_RESPONSE, ErrorClass.LINK),
        (NO_ROUTE, ErrorClass.LINK),
        (Status.ESME_RINVDSTADR, ErrorClass.PERMANENT),
        (Status.ESME_RINVSRCADR, ErrorClass.PERMANENT),
        (Status.ESME_RINVMSGLEN, ErrorClass.PERMANENT),
        (Status.ESME_RSUBMITFAIL, ErrorClass.PERMANENT),
        (Status.ESME_RX_P_APPN, ErrorClass.PERMANENT),
        (0x400, ErrorClass.PERMANENT),  # vendor-specific: permanent unless configured
    ],
)
def test_classes(status, expected):
    assert classify(status) is expected


def test_routing_errors_are_the_configured_ones():
    failover_on = parse_statuses(["ESME_RINVDSTADR", "0x45"])
    assert classify(Status.ESME_RINVDSTADR, failover_on) is ErrorClass.ROUTING
    assert classify(Status.ESME_RSUBMITFAIL, failover_on) is ErrorClass.ROUTING
    # throttling and temporary errors keep their class even if listed
    assert classify(Status.ESME_RTHROTTLED, parse_statuses([0x58])) is ErrorClass.THROTTLE


@pytest.mark.parametrize("value", [11, "11", "0x0B", "0x0b", "ESME_RINVDSTADR", "rinvdstadr", " RINVDSTADR "])
def test_parse_status_forms(value):
    assert parse_status(value) == 0x0B


@pytest.mark.parametrize("value", ["ESME_NOPE", 0, -1, 2**32, True, "0xZZ"])
def test_parse_status_rejects(value):
    with pytest.raises(ValueError):
        parse_status(value)


def test_names():
    assert error_name(0x0B) == "ESME_RINVDSTADR"
    assert error_name(LINK_LOST) == "link lost"
    assert error_name(RESPONSE_TIMEOUT) == "response timeout"
    assert error_name(0x400) == "0x00000400"
