"""HTTP to a GeoReport v2 endpoint: GET requests (by creation window, by ids, updated_after), one
request by id, and FixMyStreet's servicerequestupdates; JSON or XML.

Each query has a total and a connect timeout. A timeout, a connection error, a 5xx or a 429 is
retried ``retries`` times with a doubling pause (``Retry-After`` when the server gives one, within
``max_backoff_seconds``); other 4xx are the server refusing the query (a bad api_key, an unknown
jurisdiction) and raise at once. The server's ``Date`` header measures how far its clock is from
ours (:attr:`Open311Client.clock_offset`), so creation windows end at the server's "now".
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import aiohttp
import structlog

from config.crm_adapters import Open311AdapterSettings
from gateway import clock

from .parsing import MalformedResponse, Open311Error, Record, parse_errors, parse_list, w3c

log = structlog.get_logger("open311")

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
RETRYABLE = frozenset({429, 500, 502, 503, 504})


class Unreachable(Exception):
    """The server could not be reached or kept failing (after the retries)."""


class Open311Client:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: Open311AdapterSettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = clock.utcnow,
    ):
        self.session = session
        self.s = settings
        self.sleep = sleep
        self.now = now
        self.clock_offset: float | None = None  # seconds: the server's clock minus ours
        self.queries = 0

    def _params(self, extra: dict[str, str]) -> dict[str, str]:
        params = dict(extra)
        if self.s.jurisdiction_id:
            params["jurisdiction_id"] = self.s.jurisdiction_id
        if self.s.api_key:
            params["api_key"] = self.s.api_key
        return params

    def _measure(self, response: aiohttp.ClientResponse, sent: datetime, elapsed: float) -> None:
        header = response.headers.get("Date")
        if not header:
            return
        try:
            server = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return
        if server.tzinfo is None:
            return
        # our clock halfway through the exchange; the header has whole seconds (+0.5: its middle)
        ours = sent.replace(tzinfo=UTC) + timedelta(seconds=elapsed / 2)
        self.clock_offset = round((server - ours).total_seconds() + 0.5, 1)

    async def _get(self, path: str, params: dict[str, str]) -> bytes:
        url = f"{self.s.url}/{path}"
        attempt = 0
        while True:
            attempt += 1
            self.queries += 1
            retry_after: float | None = None
            sent, started = self.now(), time.perf_counter()
            try:
                async with self.session.get(url, params=self._params(params)) as response:
                    body = await self._read(response)
                    self._measure(response, sent, time.perf_counter() - started)
                    if 200 <= response.status < 300:
                        return body
                    if response.status not in RETRYABLE:
                        raise parse_errors(response.status, body, self.s.format)
                    problem: Exception = parse_errors(response.status, body, self.s.format)
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError) as exc:
                problem = exc
            if attempt > self.s.retries:
                raise Unreachable(f"{path}: {_describe(problem)} (after {attempt} attempts)") from problem
            pause = self.s.retry_backoff_seconds * 2 ** (attempt - 1)
            if retry_after is not None:
                pause = max(pause, retry_after)
            pause = min(pause, self.s.max_backoff_seconds)
            log.info("open311 query failed; retrying", path=path, error=_describe(problem), pause=pause)
            await self.sleep(pause)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise MalformedResponse(f"response larger than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    # --- the queries ----------------------------------------------------------------------------

    async def requests(self, params: dict[str, str]) -> list[Record]:
        body = await self._get(f"requests.{self.s.format}", params)
        return parse_list(body, self.s.format, "service_requests", "request")

    async def created_between(self, start: datetime, end: datetime, page: int | None = None) -> list[Record]:
        params = {"start_date": w3c(start), "end_date": w3c(end)}
        return await self.requests(self._paged(params, page))

    async def updated_between(self, start: datetime, end: datetime, page: int | None = None) -> list[Record]:
        params = {"updated_after": w3c(start), "updated_before": w3c(end)}
        return await self.requests(self._paged(params, page))

    async def by_ids(self, request_ids: list[str]) -> list[Record]:
        return await self.requests({"service_request_id": ",".join(request_ids)})

    async def one(self, request_id: str) -> list[Record]:
        body = await self._get(f"requests/{quote(request_id, safe='')}.{self.s.format}", {})
        return parse_list(body, self.s.format, "service_requests", "request")

    async def updates_between(self, start: datetime, end: datetime) -> list[Record]:
        body = await self._get(
            f"servicerequestupdates.{self.s.format}", {"start_date": w3c(start), "end_date": w3c(end)}
        )
        return parse_list(body, self.s.format, "service_request_updates", "request_update")

    def _paged(self, params: dict[str, str], page: int | None) -> dict[str, str]:
        if page is not None and self.s.page_size is not None:
            params.update(page=str(page), page_size=str(self.s.page_size))
        return params


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def _describe(problem: BaseException) -> str:
    if isinstance(problem, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(problem, Open311Error):
        return str(problem)
    return f"{type(problem).__name__}: {problem}"
