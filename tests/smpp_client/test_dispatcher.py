"""What each send outcome does to the outbox row (pure mapping, no database)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.domain.status import MessageStatus
from gateway.store import outbox
from scheduler.dispatcher import Dispatcher
from smpp_client.constants import Status
from smpp_client.errors import INVALID_MESSAGE_ID, LINK_LOST, NO_ROUTE
from smpp_client.jobs import SendOutcome

NOW = datetime(2026, 11, 29, 16, 0, 0)


class FakePool:
    def capacity(self):
        return 0


def dispatcher(max_attempts: int = 10) -> Dispatcher:
    return Dispatcher(db=None, pool=FakePool(), writer=None, owner="t", max_attempts=max_attempts)


def message(attempts: int = 1, validity: timedelta = timedelta(hours=1)) -> outbox.ClaimedMessage:
    return outbox.ClaimedMessage(7, "+525512345678", "hola", 2, 1, attempts, NOW + validity)


def test_submitted_records_carrier_ids_encoding_and_a_failover_route():
    change = dispatcher()._change_for(
        message(),
        SendOutcome("submitted", "movistar", ["m1"], None, None, "gsm7", 1, "telcel > movistar (after x)"),
        NOW,
    )
    assert change == outbox.Submitted(7, "movistar", ["m1"], NOW, "gsm7", 1, "telcel > movistar (after x)")
    plain = dispatcher()._change_for(
        message(), SendOutcome("submitted", "telcel", ["t1"], route="telcel"), NOW
    )
    assert plain.detail is None


def test_permanent_failure_keeps_the_code_and_name():
    change = dispatcher()._change_for(
        message(), SendOutcome("failed", "telcel", [], Status.ESME_RINVDSTADR, "ESME_RINVDSTADR"), NOW
    )
    assert change == outbox.Failed(7, MessageStatus.FAILED, 0x0B, "ESME_RINVDSTADR", NOW, "telcel")


def test_release_goes_back_at_once_without_counting_an_attempt():
    change = dispatcher()._change_for(
        message(), SendOutcome("release", None, [], NO_ROUTE, "no carrier"), NOW
    )
    assert isinstance(change, outbox.Retry)
    assert change.count_attempt is False and change.error_code is None
    assert change.not_before == NOW + timedelta(seconds=1)


@pytest.mark.parametrize("attempts", [1, 3, 8])
def test_temporary_failure_backs_off_exponentially_with_jitter(attempts):
    change = dispatcher()._change_for(
        message(attempts), SendOutcome("retry", "telcel", [], Status.ESME_RSYSERR, "ESME_RSYSERR"), NOW
    )
    assert isinstance(change, outbox.Retry) and change.count_attempt
    delay = (change.not_before - NOW).total_seconds()
    assert 2**attempts * 0.5 <= delay <= 2**attempts
    assert change.error_code == Status.ESME_RSYSERR


def test_link_errors_have_no_smpp_code():
    change = dispatcher()._change_for(
        message(), SendOutcome("retry", "telcel", [], LINK_LOST, "link lost"), NOW
    )
    assert change.error_code is None and change.error_text == "link lost"


def test_the_last_attempt_fails_the_message():
    change = dispatcher(max_attempts=3)._change_for(
        message(3), SendOutcome("retry", "telcel", [], Status.ESME_RSYSERR, "ESME_RSYSERR"), NOW
    )
    assert change.status == MessageStatus.FAILED and "3 attempts" in change.error_text


def test_a_retry_past_the_validity_expires_instead():
    change = dispatcher()._change_for(
        message(5, validity=timedelta(seconds=10)),
        SendOutcome("retry", "telcel", [], Status.ESME_RSYSERR, "ESME_RSYSERR"),
        NOW,
    )
    assert change.status == MessageStatus.EXPIRED and "ESME_RSYSERR" in change.error_text


def test_a_job_handed_back_at_its_deadline_expired_or_only_its_lease_ended():
    deadline = SendOutcome("deadline", "telcel", [], None, "deadline reached before submission")
    expired = dispatcher()._change_for(message(validity=timedelta(milliseconds=500)), deadline, NOW)
    assert isinstance(expired, outbox.Failed) and expired.status == MessageStatus.EXPIRED
    assert expired.error_text == "validity ended before submission"
    lease = dispatcher()._change_for(message(), deadline, NOW)
    assert isinstance(lease, outbox.Retry) and lease.count_attempt is False
    assert (lease.error_text, lease.not_before) == (
        "lease ending before submission",
        NOW + timedelta(seconds=1),
    )


def test_an_operators_retry_gives_a_fresh_budget_and_attempts_keep_counting():
    retried = outbox.ClaimedMessage(7, "+525512345678", "hola", 2, 1, 12, NOW + timedelta(hours=1), 10)
    assert retried.attempts_since_retry == 2
    change = dispatcher(max_attempts=3)._change_for(
        retried, SendOutcome("retry", "telcel", [], Status.ESME_RSYSERR, "ESME_RSYSERR"), NOW
    )
    assert isinstance(change, outbox.Retry)  # 2 of 3 since the retry, though 12 in all
    assert 2.0 <= (change.not_before - NOW).total_seconds() <= 4.0  # backoff from the fresh budget
    spent = outbox.ClaimedMessage(7, "+525512345678", "hola", 2, 1, 13, NOW + timedelta(hours=1), 10)
    failed = dispatcher(max_attempts=3)._change_for(
        spent, SendOutcome("retry", "telcel", [], Status.ESME_RSYSERR, "ESME_RSYSERR"), NOW
    )
    assert failed.status == MessageStatus.FAILED and "13 attempts" in failed.error_text


def test_a_carrier_that_only_answers_unusable_ids_retries_without_an_smpp_code():
    change = dispatcher()._change_for(
        message(), SendOutcome("retry", "telcel", [], INVALID_MESSAGE_ID, "unusable message id"), NOW
    )
    assert isinstance(change, outbox.Retry) and change.count_attempt
    assert (change.error_code, change.error_text) == (None, "unusable message id")
