"""HMAC request signatures: sign(), sign_v1() and verify() (bounded header parse, v2 binding the
method, path and query, v1 only where allowed, the replay key)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from gateway.http.problems import Problem
from gateway.http.signing import (
    CLIENT_HEADER,
    SIGNATURE_HEADER,
    parse_signature,
    sign,
    sign_v1,
    signed_headers,
    verify,
)

SECRETS = {"cesac": "s3cret", "other": "another-secret"}
NOW = 1_790_000_000
BODY = b'{"id":"cesac-000123","type":"case.received"}'
POST, EVENTS = "POST", "/api/v1/events"


def _headers(signature: str | None, client: str | None = "cesac") -> dict[str, str]:
    headers = {}
    if client is not None:
        headers[CLIENT_HEADER] = client
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return headers


def _verify(headers, method=POST, path=EVENTS, body=BODY, now=NOW, **kwargs):
    return verify(headers, method, path, body, SECRETS, now=now, **kwargs)


def _refused(headers: dict[str, str], method=POST, path=EVENTS, body: bytes = BODY, **kwargs) -> Problem:
    with pytest.raises(Problem) as info:
        _verify(headers, method, path, body, **kwargs)
    problem = info.value
    assert problem.status == 401
    assert problem.title == "Unauthorized"
    assert problem.detail
    return problem


def _v2(secret: str, t: int, method: str, path: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.{method}.{path}.".encode() + body, hashlib.sha256).hexdigest()


def _v1(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


# --- sign ----------------------------------------------------------------------------------------


def test_sign_is_t_and_v2_over_timestamp_method_path_with_query_and_body():
    path = "/api/v1/messages?status=failed&msisdn=%2B525512345678"
    assert sign("s3cret", "get", path, b"", NOW) == f"t={NOW},v2={_v2('s3cret', NOW, 'GET', path, b'')}"


def test_sign_with_v1_adds_the_v1_value_of_the_same_timestamp():
    header = sign("s3cret", POST, "/status?x=1", BODY, NOW, with_v1=True)
    v2, v1 = _v2("s3cret", NOW, POST, "/status?x=1", BODY), _v1("s3cret", NOW, BODY)
    assert header == f"t={NOW},v2={v2},v1={v1}"


def test_sign_v1_is_t_and_v1_over_timestamp_and_body():
    assert sign_v1("s3cret", BODY, NOW) == f"t={NOW},v1={_v1('s3cret', NOW, BODY)}"


def test_sign_without_timestamp_uses_the_current_clock(monkeypatch):
    monkeypatch.setattr("gateway.http.signing.time.time", lambda: NOW + 0.9)
    assert sign("s3cret", POST, EVENTS, BODY).startswith(f"t={NOW},v2=")
    assert sign_v1("s3cret", BODY).startswith(f"t={NOW},v1=")


def test_signed_headers_carry_the_client_and_the_signature():
    assert signed_headers("cesac", "s3cret", POST, EVENTS, BODY, NOW) == {
        CLIENT_HEADER: "cesac",
        SIGNATURE_HEADER: sign("s3cret", POST, EVENTS, BODY, NOW),
    }


# --- verify: accepted ----------------------------------------------------------------------------


def test_good_v2_signature_returns_the_client_and_its_timestamp():
    verified = _verify(_headers(sign("s3cret", POST, EVENTS, BODY, NOW)))
    assert (verified.client_id, verified.timestamp) == ("cesac", NOW)
    assert len(verified.digest) == 32


def test_good_signature_of_another_client_returns_that_client():
    headers = _headers(sign("another-secret", POST, EVENTS, BODY, NOW), client="other")
    assert _verify(headers).client_id == "other"


def test_empty_body_of_a_get_is_signed_with_the_path():
    path = "/api/v1/messages/7"
    assert _verify(_headers(sign("s3cret", "GET", path, b"", NOW)), "GET", path, b"").client_id == "cesac"


def test_uppercase_hex_and_spaces_after_commas_are_accepted():
    header = f"t={NOW}, v2={_v2('s3cret', NOW, POST, EVENTS, BODY).upper()}"
    assert _verify(_headers(header)).client_id == "cesac"


@pytest.mark.parametrize("offset", [-300, -299, 299, 300])
def test_timestamp_just_inside_the_tolerance_is_accepted(offset):
    t = NOW + offset
    assert _verify(_headers(sign("s3cret", POST, EVENTS, BODY, t))).client_id == "cesac"


def test_two_v2_values_where_the_second_matches_is_accepted_for_secret_rotation():
    old, new = _v2("old-secret", NOW, POST, EVENTS, BODY), _v2("s3cret", NOW, POST, EVENTS, BODY)
    header = f"t={NOW},v2={old},v2={new}"
    assert _verify(_headers(header)).client_id == "cesac"


def test_unknown_schemes_are_ignored_next_to_a_good_v2():
    header = f"t={NOW},v9=abc,v2={_v2('s3cret', NOW, POST, EVENTS, BODY)}"
    assert _verify(_headers(header)).client_id == "cesac"


def test_v1_is_accepted_where_allowed():
    assert _verify(_headers(sign_v1("s3cret", BODY, NOW)), allow_v1=True).client_id == "cesac"


def test_v1_and_v2_of_one_request_have_one_replay_key_where_v1_is_allowed():
    """Stripping one scheme from a captured header does not make a new request."""
    both = sign("s3cret", POST, EVENTS, BODY, NOW, with_v1=True)
    v2_only = sign("s3cret", POST, EVENTS, BODY, NOW)
    v1_only = sign_v1("s3cret", BODY, NOW)
    keys = {_verify(_headers(h), allow_v1=True).digest for h in (both, v2_only, v1_only)}
    assert len(keys) == 1


def test_where_v1_is_allowed_a_changed_query_is_the_same_request_for_the_replay_check():
    header = sign_v1("s3cret", BODY, NOW)
    first = _verify(_headers(header), allow_v1=True).digest
    assert _verify(_headers(header), path=EVENTS + "?again=1", allow_v1=True).digest == first


def test_replay_keys_differ_by_path_method_body_and_time():
    def key(method=POST, path=EVENTS, body=BODY, t=NOW):
        return _verify(_headers(sign("s3cret", method, path, body, t)), method, path, body).digest

    keys = {key(), key(method="PUT"), key(path="/api/v1/events?x=1"), key(body=b"{}"), key(t=NOW - 1)}
    assert len(keys) == 5


def test_verify_uses_the_current_clock_by_default(monkeypatch):
    monkeypatch.setattr("gateway.http.signing.time.time", lambda: float(NOW))
    assert _verify(_headers(sign("s3cret", POST, EVENTS, BODY, NOW)), now=None).client_id == "cesac"
    monkeypatch.setattr("gateway.http.signing.time.time", lambda: float(NOW + 301))
    _refused(_headers(sign("s3cret", POST, EVENTS, BODY, NOW)), now=None)


# --- verify: refused -----------------------------------------------------------------------------


def test_wrong_signature_is_refused():
    problem = _refused(_headers(sign("not-the-secret", POST, EVENTS, BODY, NOW)))
    assert problem.detail == "signature does not match"


def test_signature_with_another_clients_secret_is_refused():
    problem = _refused(_headers(sign("another-secret", POST, EVENTS, BODY, NOW), client="cesac"))
    assert "does not match" in problem.detail


def test_body_tampered_after_signing_is_refused():
    problem = _refused(_headers(sign("s3cret", POST, EVENTS, BODY, NOW)), body=BODY.replace(b"123", b"124"))
    assert "does not match" in problem.detail


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("DELETE", "/api/v1/subscriptions?msisdn=5512345678", id="get-signature-on-delete"),
        pytest.param("POST", "/api/v1/broadcasts/1/cancel", id="get-signature-on-cancel"),
        pytest.param("GET", "/api/v1/messages/2", id="another-path"),
        pytest.param("GET", "/api/v1/messages/1?x=1", id="query-added"),
    ],
)
def test_a_gets_signature_is_refused_on_another_method_path_or_query(method, path):
    get = _headers(sign("s3cret", "GET", "/api/v1/messages/1", b"", NOW))
    problem = _refused(get, method, path, b"")
    assert problem.detail == "signature does not match"


def test_a_changed_query_value_is_refused():
    header = sign("s3cret", "DELETE", "/api/v1/subscriptions?msisdn=5512345678", b"", NOW)
    _refused(_headers(header), "DELETE", "/api/v1/subscriptions?msisdn=5587654321", b"")


def test_timestamp_changed_after_signing_is_refused():
    digest = _v2("s3cret", NOW, POST, EVENTS, BODY)
    problem = _refused(_headers(f"t={NOW + 1},v2={digest}"))
    assert "does not match" in problem.detail


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86_400])
def test_stale_or_future_timestamp_is_refused(offset):
    problem = _refused(_headers(sign("s3cret", POST, EVENTS, BODY, NOW + offset)))
    assert "timestamp" in problem.detail
    assert "300 s" in problem.detail


def test_the_hmac_is_checked_before_the_timestamp():
    """A stale header with a wrong HMAC says the signature does not match (it proves nothing)."""
    problem = _refused(_headers(sign("not-the-secret", POST, EVENTS, BODY, NOW - 3600)))
    assert problem.detail == "signature does not match"


def test_custom_tolerance_is_honoured():
    with pytest.raises(Problem) as info:
        verify(
            _headers(sign("s3cret", POST, EVENTS, BODY, NOW - 61)),
            POST,
            EVENTS,
            BODY,
            SECRETS,
            tolerance_seconds=60,
            now=NOW,
        )
    assert info.value.status == 401
    assert "60 s" in info.value.detail


def test_v1_is_refused_where_not_allowed_saying_so():
    problem = _refused(_headers(sign_v1("s3cret", BODY, NOW)))
    assert "v1 signatures are accepted only on the events endpoints" in problem.detail


def test_a_v1_value_next_to_a_wrong_v2_does_not_count_where_v1_is_not_allowed():
    header = f"t={NOW},v2={'0' * 64},v1={_v1('s3cret', NOW, BODY)}"
    assert _refused(_headers(header)).detail == "signature does not match"


def test_unknown_client_is_refused():
    problem = _refused(_headers(sign("s3cret", POST, EVENTS, BODY, NOW), client="intruder"))
    assert problem.detail == "unknown client"


def test_missing_client_header_is_refused():
    problem = _refused(_headers(sign("s3cret", POST, EVENTS, BODY, NOW), client=None))
    assert CLIENT_HEADER in problem.detail
    assert "missing" in problem.detail


def test_empty_client_header_is_refused_as_missing():
    problem = _refused(_headers(sign("s3cret", POST, EVENTS, BODY, NOW), client=""))
    assert CLIENT_HEADER in problem.detail


def test_missing_signature_header_is_refused():
    problem = _refused(_headers(None))
    assert SIGNATURE_HEADER in problem.detail
    assert "missing" in problem.detail


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("v2=" + "ab" * 32, id="no-t"),
        pytest.param("t=,v2=" + "ab" * 32, id="empty-t"),
        pytest.param("t=abc,v2=" + "ab" * 32, id="non-numeric-t"),
        pytest.param("t=-5,v2=" + "ab" * 32, id="negative-t"),
        pytest.param("t=1.5,v2=" + "ab" * 32, id="fractional-t"),
        pytest.param("t=²,v2=" + "ab" * 32, id="superscript-digit-t"),
        pytest.param(f"t={NOW},t={NOW},v2=" + "ab" * 32, id="two-t"),
        pytest.param(f"t={NOW}", id="no-signature"),
        pytest.param(f"t={NOW},v0=" + "ab" * 32, id="only-other-scheme"),
        pytest.param("t=" + "9" * 13 + ",v2=" + "ab" * 32, id="13-digit-t"),
        pytest.param("garbage", id="garbage"),
    ],
)
def test_malformed_signature_header_is_refused(header):
    problem = _refused(_headers(header))
    assert SIGNATURE_HEADER in problem.detail
    assert "t=<unix seconds>,v2=<hex hmac>" in problem.detail


def test_a_5000_digit_timestamp_is_refused_before_it_is_converted():
    problem = _refused(_headers("t=" + "9" * 5000 + ",v2=" + "ab" * 32))
    assert "longer than 1024 characters" in problem.detail


def test_a_12_digit_timestamp_is_parsed_then_refused_as_stale():
    assert parse_signature("t=" + "9" * 12 + ",v2=00").timestamp == 999_999_999_999
    t = 999_999_999_999
    problem = _refused(_headers(f"t={t},v2={_v2('s3cret', t, POST, EVENTS, BODY)}"))
    assert "timestamp" in problem.detail


def test_a_header_longer_than_1024_characters_is_refused():
    values = ",".join(f"v2={'ab' * 32}" for _ in range(16))
    problem = _refused(_headers(f"t={NOW},{values}"))
    assert "1024" in problem.detail


def test_non_ascii_v2_value_is_refused_as_not_matching():
    assert _refused(_headers(f"t={NOW},v2=é")).detail == "signature does not match"


def test_refusal_renders_as_problem_json():
    problem = _refused(_headers(sign("s3cret", POST, EVENTS, BODY, NOW), client="intruder"))
    response = problem.response("/api/v1/events")
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert json.loads(response.body)["detail"] == "unknown client"
