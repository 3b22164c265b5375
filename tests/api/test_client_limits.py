"""Each CRM client's request rate and requests in progress: a 429 problem with Retry-After beyond
them, for that client only, before anything is done; unknown clients are a 401, never counted."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading

import pytest
from sqlalchemy import func, select

from gateway.http.client_limits import ClientLimit, ClientLimits
from gateway.http.deps import DEPS
from gateway.http.problems import Problem
from gateway.http.signing import Signer, signed_headers
from gateway.store.models import events
from tests.api_gateway import SECRETS, api_settings, running


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_admitted_then_the_rate_refills_it():
    clock = FakeClock()
    limits = ClientLimits({"cesac": ClientLimit(2.0, 3, 10)}, clock)
    for _ in range(3):
        with limits.admit("cesac"):
            pass
    with pytest.raises(Problem) as refused:
        with limits.admit("cesac"):
            pass
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "1"}
    clock.now += 0.5  # one request's worth at 2/s
    with limits.admit("cesac"):
        pass
    with pytest.raises(Problem):
        with limits.admit("cesac"):
            pass
    assert limits.refused == {("cesac", "rate"): 2}


def test_retry_after_says_when_a_slow_rate_has_a_request_again():
    limits = ClientLimits({"cesac": ClientLimit(0.1, 1, 10)}, FakeClock())
    with limits.admit("cesac"):
        pass
    with pytest.raises(Problem) as refused:
        with limits.admit("cesac"):
            pass
    assert refused.value.headers["Retry-After"] == "10"


def test_requests_in_progress_are_capped_and_released_even_when_the_handler_fails():
    limits = ClientLimits({"cesac": ClientLimit(1000.0, 1000, 2), "other": ClientLimit(1000.0, 1000, 1)})
    with limits.admit("cesac"), limits.admit("cesac"):
        assert limits.in_progress("cesac") == 2
        with pytest.raises(Problem) as refused:
            with limits.admit("cesac"):
                pass
        assert refused.value.status == 429 and "max_concurrent (2)" in refused.value.detail
        with limits.admit("other"):  # another client's places are its own
            pass
    with pytest.raises(RuntimeError):
        with limits.admit("cesac"):
            raise RuntimeError("handler failed")
    assert limits.in_progress("cesac") == 0
    assert limits.refused == {("cesac", "concurrency"): 1}


def test_the_defaults_are_generous(db_url):
    client = api_settings(db_url).crm_client("cesac")
    assert (client.requests_per_second, client.burst, client.max_concurrent) == (2000, 4000, 64)


async def test_over_its_rate_a_client_gets_a_429_problem_and_nothing_is_done(db_url):
    settings = api_settings(db_url, clients={"cesac": {"requests_per_second": 0.01, "burst": 2}})
    async with running(settings) as (gateway, http):
        signer = Signer("cesac", SECRETS["cesac"])

        async def post_event(event_id: str):
            body = json.dumps(
                {
                    "id": event_id,
                    "type": "case.received",
                    "case": {"folio": "MH-1"},
                    "citizen": {"msisdn": "55 1234 5678"},
                }
            ).encode()
            headers = {"Content-Type": "application/json", **signer.headers("POST", "/api/v1/events", body)}
            async with http.post("/api/v1/events", data=body, headers=headers) as response:
                return response.status, response.content_type, response.headers, await response.json()

        assert (await post_event("e-1"))[0] == 202
        assert (await post_event("e-2"))[0] == 202
        status, media_type, headers, problem = await post_event("e-3")
        assert (status, media_type) == (429, "application/problem+json")
        assert problem["title"] == "Too many requests" and problem["status"] == 429
        assert 1 <= int(headers["Retry-After"]) <= 100  # a request's worth at 0.01/s
        with gateway.db.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(events)).scalar() == 2

        # another client is not held back, and an unknown client is a 401 (counted for nobody)
        other = signed_headers("other", SECRETS["other"], "GET", "/api/v1/stats", b"")
        async with http.get("/api/v1/stats", headers=other) as response:
            assert response.status == 200
        stranger = signed_headers("stranger", "nope", "GET", "/api/v1/stats", b"")
        async with http.get("/api/v1/stats", headers=stranger) as response:
            assert response.status == 401
        async with http.get("/metrics") as response:
            lines = (await response.text()).splitlines()
        assert 'smsgw_api_requests_limited_total{client="cesac",reason="rate"} 1' in lines
        assert not any("stranger" in line for line in lines)

        # every signed operation says it can answer 429, and with which header
        async with http.get("/api/v1/openapi.json") as response:
            document = await response.json()
        signed = [
            op
            for ops in document["paths"].values()
            for op in ops.values()
            if {"client": [], "signature": []} in op.get("security", [])
        ]
        assert len(signed) >= 10
        for op in signed:
            reply = op["responses"]["429"]
            assert reply["content"]["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
            assert reply["headers"]["Retry-After"]["schema"]["type"] == "integer", op["operationId"]


async def test_over_its_requests_in_progress_a_client_gets_a_429(tmp_path, sqlite_template):
    path = tmp_path / "smsgw.db"
    shutil.copy(sqlite_template, path)
    settings = api_settings(f"sqlite:///{path}", clients={"cesac": {"max_concurrent": 1}})
    async with running(settings) as (gateway, http):
        signer = Signer("cesac", SECRETS["cesac"])
        release = threading.Event()
        # SQLite's one database thread is kept busy, so the first request waits in its handler
        blocked = asyncio.ensure_future(gateway.db.run(lambda _conn: release.wait(10)))

        async def stats():
            headers = signer.headers("GET", "/api/v1/stats")
            async with http.get("/api/v1/stats", headers=headers) as response:
                return response.status, response.headers, await response.json()

        first = asyncio.ensure_future(stats())
        limits = gateway.app[DEPS].limits
        async with asyncio.timeout(10):  # nothing to await: the request is inside its handler
            while limits.in_progress("cesac") == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        status, headers, problem = await stats()
        assert status == 429 and headers["Retry-After"] == "1"
        assert "max_concurrent (1)" in problem["detail"]
        release.set()
        await blocked
        assert (await first)[0] == 200
        assert (await stats())[0] == 200  # its place was given back
