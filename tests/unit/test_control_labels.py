"""The control room's words: Spanish and English say the same things, for every status, priority,
bind state and SMPP error the gateway can show."""

from __future__ import annotations

from gateway.domain.status import MessageStatus, Priority
from gateway.http.api.metrics import SILENT_FAILURES
from gateway.http.operators import labels as module
from gateway.http.operators.labels import (
    INTENTS,
    LINK_STATES,
    PRIORITIES,
    SMPP_ERRORS,
    STATUSES,
    WORDS,
    labels,
)
from smpp_client.constants import Status
from smpp_client.errors import (
    BAD_RESPONSE,
    INVALID_MESSAGE_ID,
    LINK_LOST,
    NO_ROUTE,
    RESPONSE_TIMEOUT,
    error_name,
)


def test_both_languages_name_the_same_things():
    for table in (
        STATUSES,
        PRIORITIES,
        LINK_STATES,
        SMPP_ERRORS,
        INTENTS,
        WORDS,
        module.SILENT_FAILURES,
        module.CONSENT_ACTIONS,
    ):
        assert set(table["es"]) == set(table["en"])
    for nested in ("b_status", "problems"):
        assert set(WORDS["es"][nested]) == set(WORDS["en"][nested])


def test_every_status_priority_and_counter_has_a_spanish_label():
    assert set(STATUSES["es"]) == {s.value for s in MessageStatus}
    assert set(PRIORITIES["es"]) == {p.name.lower() for p in Priority}
    assert set(module.SILENT_FAILURES["es"]) == {*SILENT_FAILURES, "callbacks_given_up"}
    assert STATUSES["es"]["delivered"] == "entregado" and LINK_STATES["es"]["paused"] == "en pausa"


def test_smpp_error_names_are_real_ones():
    pseudo = {
        error_name(code) for code in (LINK_LOST, RESPONSE_TIMEOUT, NO_ROUTE, BAD_RESPONSE, INVALID_MESSAGE_ID)
    }
    assert set(SMPP_ERRORS["es"]) - pseudo <= set(Status.__members__)
    assert SMPP_ERRORS["es"]["ESME_RINVDSTADR"] == "número de destino no válido"
    assert labels("en")["smpp_errors"]["ESME_RTHROTTLED"] == "throttled"
