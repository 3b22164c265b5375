"""A GeoReport v2 server on loopback, standing in for a city's CRM (tests and bench/open311_poll.py).

It behaves as the spec says a server does: ``GET requests.json|xml`` filtered by ``start_date`` /
``end_date`` on ``requested_datetime`` (a span over 90 days is a 400), ordered by creation, at most
``max_results`` rows; ``service_request_id=a,b,c`` overrides every other argument; ``GET
requests/<id>.json``; and, when switched on, Chicago's ``updated_after`` / ``updated_before``, the
``page`` / ``page_size`` extension and FixMyStreet's ``servicerequestupdates``. Its clock can run
ahead or behind (``skew``); its ``Date`` header says so. Faults can be queued per query: a 5xx, a
hang (the client's timeout fires), a malformed body.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

from aiohttp import web

FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "zipcode",
    "lat",
    "long",
    "phone",
    "account_id",
)


def w3c(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Fault:
    kind: str  # "500", "503", "hang", "malformed", "400"
    path: str | None = None  # only for queries of this path ("requests.json"); None: the next query
    skip: int = 0  # let this many matching queries through first


@dataclass
class GeoReportServer:
    now: Callable[[], datetime] = lambda: datetime.now(UTC)  # the real world's time (aware UTC)
    skew: timedelta = timedelta(0)  # the server's clock minus the real one
    max_results: int = 1000
    updated_after: bool = False  # Chicago's parameters
    updates_feed: bool = False  # FixMyStreet's servicerequestupdates
    paging: bool = False
    max_span_days: int = 90
    requests: dict[str, dict] = field(default_factory=dict)
    updates: list[dict] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    queries: list[tuple[str, dict]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None
    _hung: asyncio.Event = field(default_factory=asyncio.Event)
    hanging: asyncio.Event = field(default_factory=asyncio.Event)  # set when a query starts hanging

    # --- data -------------------------------------------------------------------------------------

    def clock(self) -> datetime:
        return self.now() + self.skew

    def add(self, request_id: str, requested: datetime, status: str = "open", **values) -> dict:
        record = {
            "service_request_id": request_id,
            "status": status,
            "service_name": values.pop("service_name", "Fuga de agua"),
            "service_code": "006",
            "requested_datetime": w3c(requested),
            "updated_datetime": w3c(values.pop("updated", requested)),
            **values,
        }
        self.requests[request_id] = record
        return record

    def change(self, request_id: str, at: datetime, **values) -> dict:
        record = self.requests[request_id]
        record.update(values, updated_datetime=w3c(at))
        return record

    def update(
        self, request_id: str, update_id: str, at: datetime, status: str, description: str = ""
    ) -> None:
        """A FixMyStreet update (and the request follows it)."""
        self.updates.append(
            {
                "update_id": update_id,
                "service_request_id": request_id,
                "status": status,
                "description": description,
                "updated_datetime": w3c(at),
                "media_url": "",
            }
        )
        generic = "closed" if status in ("fixed", "closed", "duplicate") else "open"
        self.change(request_id, at, status=generic, status_notes=description or None)

    # --- serving ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        port = self._site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/open311/v2"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/open311/v2/requests.{fmt}", self._requests)
        app.router.add_get("/open311/v2/requests/{id}.{fmt}", self._one)
        app.router.add_get("/open311/v2/servicerequestupdates.{fmt}", self._updates)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await self._site.start()

    async def stop(self) -> None:
        self._hung.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def _headers(self) -> dict[str, str]:
        return {"Date": email.utils.format_datetime(self.clock(), usegmt=True)}

    async def _fault(self, request: web.Request) -> web.Response | None:
        path = request.path.rsplit("/", 1)[-1]
        for fault in self.faults:
            if fault.path is None or fault.path == path:
                if fault.skip:
                    fault.skip -= 1
                    return None
                self.faults.remove(fault)
                if fault.kind == "hang":
                    self.hanging.set()
                    await self._hung.wait()
                if fault.kind == "malformed":
                    body = (
                        '[{"service_request_id": 1,'
                        if path.endswith("json")
                        else "<service_requests><request>"
                    )
                    return web.Response(text=body, headers=self._headers())
                status = int(fault.kind) if fault.kind.isdigit() else 500
                return self._errors(status, "temporarily unavailable", request.match_info["fmt"])
        return None

    def _errors(self, status: int, text: str, fmt: str) -> web.Response:
        if fmt == "xml":
            body = (
                '<?xml version="1.0" encoding="utf-8"?><errors><error>'
                f"<code>{status}</code><description>{escape(text)}</description></error></errors>"
            )
            return web.Response(status=status, text=body, content_type="text/xml", headers=self._headers())
        body = json.dumps([{"code": status, "description": text}])
        return web.Response(
            status=status, text=body, content_type="application/json", headers=self._headers()
        )

    def _render(
        self, records: list[dict], fmt: str, wrapper: str = "service_requests", item: str = "request"
    ):
        if fmt == "xml":
            parts = ['<?xml version="1.0" encoding="utf-8"?>', f"<{wrapper}>"]
            for record in records:
                parts.append(f"<{item}>")
                for key, value in record.items():
                    parts.append(
                        f"<{key}>{escape(str(value))}</{key}>" if value is not None else f"<{key}></{key}>"
                    )
                parts.append(f"</{item}>")
            parts.append(f"</{wrapper}>")
            return web.Response(text="".join(parts), content_type="text/xml", headers=self._headers())
        out = []
        for record in records:  # ids as numbers where they look like numbers, as the spec's example
            shown = dict(record)
            rid = shown.get("service_request_id")
            if isinstance(rid, str) and rid.isdigit() and not rid.startswith("0"):
                shown["service_request_id"] = int(rid)
            out.append(shown)
        return web.Response(text=json.dumps(out), content_type="application/json", headers=self._headers())

    async def _requests(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.queries.append((request.path.rsplit("/", 1)[-1], params))
        fmt = request.match_info["fmt"]
        if (fault := await self._fault(request)) is not None:
            return fault
        if "service_request_id" in params:
            wanted = [i for i in params["service_request_id"].split(",") if i]
            return self._render([self.requests[i] for i in wanted if i in self.requests], fmt)
        if self.updated_after and "updated_after" in params:
            start, key = _parse(params["updated_after"]), "updated_datetime"
            end = _parse(params["updated_before"]) if "updated_before" in params else self.clock()
        else:
            end = _parse(params["end_date"]) if "end_date" in params else self.clock()
            start = _parse(params["start_date"]) if "start_date" in params else end - timedelta(days=90)
            key = "requested_datetime"
        if end - start > timedelta(days=self.max_span_days):
            return self._errors(400, "start_date and end_date may not span more than 90 days", fmt)
        found = sorted(
            (r for r in self.requests.values() if start <= _parse(r[key]) <= end),
            key=lambda r: (r[key], r.get("service_request_id") or ""),
        )
        if self.paging and "page_size" in params:
            size, page = int(params["page_size"]), int(params.get("page", 1))
            return self._render(found[(page - 1) * size : page * size], fmt)
        return self._render(found[: self.max_results], fmt)

    async def _one(self, request: web.Request) -> web.Response:
        self.queries.append((request.path.rsplit("/", 1)[-1], dict(request.query)))
        fmt = request.match_info["fmt"]
        if (fault := await self._fault(request)) is not None:
            return fault
        record = self.requests.get(request.match_info["id"])
        if record is None:
            return self._errors(404, "no such service request", fmt)
        return self._render([record], fmt)

    async def _updates(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.queries.append((request.path.rsplit("/", 1)[-1], params))
        fmt = request.match_info["fmt"]
        if not self.updates_feed:
            return self._errors(404, "not found", fmt)
        if (fault := await self._fault(request)) is not None:
            return fault
        start, end = _parse(params["start_date"]), _parse(params["end_date"])
        found = sorted(
            (u for u in self.updates if start <= _parse(u["updated_datetime"]) <= end),
            key=lambda u: u["updated_datetime"],
        )
        return self._render(found[: self.max_results], fmt, "service_request_updates", "request_update")
