"""Schemathesis against the OpenAPI document of a running gateway (the API role on SQLite), every
request signed by a hook as a CRM signs it: no answer is a 5xx, every error is
application/problem+json, and answers match what the document says (status codes, media types,
schemas). Bounded for CI: a few examples per operation, valid requests and invalid ones.

Left out: schemathesis's ``positive_data_acceptance`` (the document cannot say which ten digits
are a Mexican mobile number, so a schema-valid ``0000000000`` is rightly a 422) and
``ignored_auth`` (the hook signs whatever it is given; unsigned requests are tested in
test_signatures.py).
"""

from __future__ import annotations

import shutil

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.http.signing import CLIENT_HEADER, SIGNATURE_HEADER, Signer
from tests.api_gateway import SECRETS, api_settings, serving_in_thread

EXAMPLES = 8  # per operation and generation mode
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class Signing(requests.auth.AuthBase):
    """Signs a request as sent (method, target, body) when it carries both signature headers (any
    values: the generator fills them in); one the generator left them out of (an invalid request)
    goes unsigned."""

    def __init__(self, client: str):
        self.signer = Signer(client, SECRETS[client])

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if CLIENT_HEADER in request.headers and SIGNATURE_HEADER in request.headers:
            body = request.body or b""
            body = body.encode() if isinstance(body, str) else body
            request.headers.update(self.signer.headers(request.method, request.path_url, body))
        return request


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, sqlite_template):
    path = tmp_path_factory.mktemp("schemathesis") / "smsgw.db"
    shutil.copy(sqlite_template, path)
    with serving_in_thread(api_settings(f"sqlite:///{path}")) as running:
        yield running


def media_type(response) -> str:
    headers = {name.lower(): value for name, value in response.headers.items()}
    value = headers.get("content-type", "")
    return (value[0] if isinstance(value, list) else value).split(";")[0].strip()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_the_api_answers_as_its_document_says(gateway, mode):
    schema = schemathesis.openapi.from_url(f"{gateway.url}/api/v1/openapi.json")
    http = requests.Session()
    http.auth = Signing("cesac")
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
    failures: dict[tuple[str, str], str] = {}
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(("/api/v1/", "/healthz", "/readyz", "/metrics")):
            continue  # the dashboard: operators' sessions, another suite
        tried += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy(generation_mode=mode))
        def exercise(case):
            response = case.call(base_url=gateway.url, session=http)
            if response.status_code >= 400:
                assert media_type(response) == "application/problem+json", (
                    f"{response.status_code} answered as {media_type(response)!r}"
                )
            case.validate_response(response, checks=checks)

        try:
            exercise()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to make invalid (no parameters, no body)
        except BaseException as failure:  # schemathesis's FailureGroup is a BaseExceptionGroup
            if not isinstance(failure, Exception | BaseExceptionGroup):
                raise
            failures[operation.method.upper(), operation.path] = str(failure)[:2000]
    assert tried >= 12
    assert not failures, "\n\n".join(f"{m} {p}:\n{why}" for (m, p), why in failures.items())
