"""HTTP control API and virtual handsets page of the simulator (aiohttp).

- `GET /`: the virtual handsets page
- `GET /sim/messages`: what the SMSC received; filters `to`, `carrier`, `since` (ISO 8601 or unix
  seconds), `status`, `limit`
- `GET /sim/messages/{id}`: the message one of whose parts has this SMSC message id
- `POST /sim/mo`: `{"from", "text", "to"?, "carrier"?}`, a phone's SMS to the gateway (202; 409 when
  no session of the carrier is bound to receive)
- `GET /sim/mo`, `GET /sim/mo/{id}`: MO sent (filter `from`, `limit`)
- `GET /sim/handsets`: phones by last activity, each with its conversation (what the page shows)
- `POST /sim/phones`: `{"number", "carrier"?}`, a new virtual phone
- `POST /sim/reset`: forget messages, MO, counters, queued deliver_sm and receipts not yet due;
  settings and faults back to the configuration, counting carriers' ids (`message_id_start`) start
  again (`{"drop_sessions": true}` also closes every SMPP session)
- `GET /sim/stats`: per-carrier counters (binds, refused connections, bind timeouts, submit_sm
  outcomes, receipts, resends, ...) and rates
- `GET /sim/carriers`: carriers, ports, binds
- `GET/PUT/PATCH/DELETE /sim/carriers/{name}/faults`: fault switches; PUT and PATCH change the keys
  given, DELETE turns them all off
- `GET/PUT/PATCH /sim/carriers/{name}/settings`: run-time settings (tps, window, receipt_delay,
  receipt_mode, outcomes, ...); the keys given are changed; giving `message_id_start` starts the
  carrier's id counter again there

Errors are ``application/problem+json``.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import structlog
from aiohttp import web
from pydantic import ValidationError

from .records import mask
from .smsc import Smsc

log = structlog.get_logger("simulator")

STATIC = Path(__file__).with_name("static")
SMSC_KEY = web.AppKey("smsc", Smsc)


def problem(status: int, title: str, detail: str = "", **extra) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return web.Response(status=status, text=json.dumps(body), content_type="application/problem+json")


def _validation_problem(exc: ValidationError, prefix: str = "") -> web.Response:
    errors = [
        {
            "field": ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(e["loc"])),
            "message": e["msg"],
        }
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(400, "Invalid settings", detail, errors=errors)


async def _json_body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps(
                {"type": "about:blank", "title": "Body is not JSON", "status": 400, "detail": str(exc)}
            ),
            content_type="application/problem+json",
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"type": "about:blank", "title": "Body must be a JSON object", "status": 400}),
            content_type="application/problem+json",
        )
    return body


def _parse_since(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.timestamp()  # local time, like the rest of a naive world
    return moment.timestamp()


def _carrier(request: web.Request):
    smsc = request.app[SMSC_KEY]
    name = request.match_info["name"]
    carrier = smsc.carriers.get(name)
    if carrier is None:
        raise web.HTTPNotFound(
            text=json.dumps(
                {"type": "about:blank", "title": "No such carrier", "status": 404, "detail": name}
            ),
            content_type="application/problem+json",
        )
    return carrier


# -- pages -----------------------------------------------------------------------------------------


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "handsets.html", headers={"Cache-Control": "no-cache"})


# -- messages --------------------------------------------------------------------------------------


async def list_messages(request: web.Request) -> web.Response:
    smsc = request.app[SMSC_KEY]
    query = request.query
    try:
        limit = int(query.get("limit", "100"))
        if not 1 <= limit <= 10_000:
            raise ValueError
    except ValueError:
        return problem(400, "Invalid query", "limit: an integer from 1 to 10000", field="limit")
    since = None
    if query.get("since"):
        try:
            since = _parse_since(query["since"])
        except ValueError:
            return problem(400, "Invalid query", "since: ISO 8601 date-time or unix seconds", field="since")
    carrier = query.get("carrier") or None
    if carrier is not None and carrier not in smsc.carriers:
        return problem(400, "Invalid query", f"carrier: unknown carrier {carrier!r}", field="carrier")
    status = query.get("status")
    messages = smsc.store.messages(
        to=query.get("to") or None,
        carrier=carrier,
        since=since,
        limit=limit,
        status=status.upper() if status else None,
    )
    now = time.time()
    return web.json_response({"count": len(messages), "messages": [m.as_dict(now) for m in messages]})


async def get_message(request: web.Request) -> web.Response:
    smsc = request.app[SMSC_KEY]
    part = smsc.store.part(request.match_info["id"])
    if part is None:
        return problem(404, "No such message", request.match_info["id"])
    return web.json_response(part.message.as_dict(time.time()))


# -- MO --------------------------------------------------------------------------------------------


async def post_mo(request: web.Request) -> web.Response:
    smsc = request.app[SMSC_KEY]
    body = await _json_body(request)
    sender = body.get("from")
    text = body.get("text")
    to = body.get("to") or smsc.settings.short_code
    carrier_name = body.get("carrier")
    if not isinstance(sender, str) or sum(ch.isdigit() for ch in sender) < 7:
        return problem(400, "Invalid MO", "from: a phone number such as +525512345678", field="from")
    if not isinstance(text, str) or not text:
        return problem(400, "Invalid MO", "text: a non-empty string", field="text")
    if not isinstance(to, str) or not any(ch.isdigit() for ch in to):
        return problem(400, "Invalid MO", "to: a number or short code", field="to")
    if carrier_name is not None and carrier_name not in smsc.carriers:
        return problem(400, "Invalid MO", f"carrier: unknown carrier {carrier_name!r}", field="carrier")
    phone = smsc.store.phonebook.normalize(sender, 1 if sender.startswith("+") else 0)
    carrier = smsc.route_mo(phone, carrier_name)
    if not carrier.receivers:
        return problem(
            409,
            "No receiver bound",
            f"no session of carrier {carrier.name} is bound to receive",
            carrier=carrier.name,
        )
    try:
        record = smsc.send_mo(carrier, phone, text, to)
    except ValueError as exc:  # too long (over 255 parts), lone surrogates
        return problem(400, "Invalid MO", f"text: {exc}", field="text")
    return web.json_response(record.as_dict(), status=202)


async def list_mo(request: web.Request) -> web.Response:
    smsc = request.app[SMSC_KEY]
    try:
        limit = max(1, min(10_000, int(request.query.get("limit", "100"))))
    except ValueError:
        return problem(400, "Invalid query", "limit: an integer", field="limit")
    records = smsc.store.mo(request.query.get("from") or None, limit)
    return web.json_response({"count": len(records), "mo": [r.as_dict() for r in records]})


async def get_mo(request: web.Request) -> web.Response:
    record = request.app[SMSC_KEY].store.mo_record(request.match_info["id"])
    if record is None:
        return problem(404, "No such MO", request.match_info["id"])
    return web.json_response(record.as_dict())


async def handsets(request: web.Request) -> web.Response:
    smsc = request.app[SMSC_KEY]
    try:
        limit = max(1, min(500, int(request.query.get("limit", "50"))))
        items = max(1, min(500, int(request.query.get("items", "30"))))
    except ValueError:
        return problem(400, "Invalid query", "limit and items are integers")
    return web.json_response(
        {
            "short_code": smsc.settings.short_code,
            "carriers": [
                {"name": c.name, "port": c.port, "receivers": len(c.receivers), "bound": len(c.sessions)}
                for c in smsc.carriers.values()
            ],
            "phones": smsc.store.phones(limit, items),
        }
    )


async def post_phone(request: web.Request) -> web.Response:
    smsc = request.app[SMSC_KEY]
    body = await _json_body(request)
    number = body.get("number")
    carrier = body.get("carrier")
    if not isinstance(number, str) or sum(ch.isdigit() for ch in number) < 7:
        return problem(400, "Invalid phone", "number: a phone number such as +525512345678", field="number")
    if carrier is not None and carrier not in smsc.carriers:
        return problem(400, "Invalid phone", f"carrier: unknown carrier {carrier!r}", field="carrier")
    number = smsc.store.add_phone(number, carrier)
    log.info("virtual phone added", phone=mask(number))
    return web.json_response({"number": number, "carrier": carrier}, status=201)


# -- control ---------------------------------------------------------------------------------------


async def reset(request: web.Request) -> web.Response:
    body = await _json_body(request)
    request.app[SMSC_KEY].reset(drop_sessions=bool(body.get("drop_sessions", False)))
    return web.json_response({"reset": True})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SMSC_KEY].stats())


async def carriers(request: web.Request) -> web.Response:
    smsc = request.app[SMSC_KEY]
    return web.json_response({"carriers": [c.info() for c in smsc.carriers.values()]})


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(_carrier(request).faults.as_dict())


async def put_faults(request: web.Request) -> web.Response:
    carrier = _carrier(request)
    body = await _json_body(request)
    try:
        carrier.faults.update(body)
    except ValidationError as exc:
        return _validation_problem(exc, "faults")
    log.info("faults changed", carrier=carrier.name, faults={k: v for k, v in body.items()})
    return web.json_response(carrier.faults.as_dict())


async def delete_faults(request: web.Request) -> web.Response:
    from .settings import Faults

    carrier = _carrier(request)
    carrier.faults.set(Faults())
    log.info("faults cleared", carrier=carrier.name)
    return web.json_response(carrier.faults.as_dict())


def _public_settings(carrier) -> dict:
    data = carrier.settings.model_dump(mode="json", exclude={"password", "faults"})
    data["port"] = carrier.port
    return data


async def get_settings(request: web.Request) -> web.Response:
    return web.json_response(_public_settings(_carrier(request)))


async def put_settings(request: web.Request) -> web.Response:
    carrier = _carrier(request)
    body = await _json_body(request)
    try:
        carrier.update(body)
    except ValidationError as exc:
        return _validation_problem(exc)
    except ValueError as exc:
        return problem(400, "Invalid settings", str(exc))
    return web.json_response(_public_settings(carrier))


def make_app(smsc: Smsc) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[SMSC_KEY] = smsc
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC, show_index=False)
    app.router.add_get("/sim/messages", list_messages)
    app.router.add_get("/sim/messages/{id}", get_message)
    app.router.add_post("/sim/mo", post_mo)
    app.router.add_get("/sim/mo", list_mo)
    app.router.add_get("/sim/mo/{id}", get_mo)
    app.router.add_get("/sim/handsets", handsets)
    app.router.add_post("/sim/phones", post_phone)
    app.router.add_post("/sim/reset", reset)
    app.router.add_get("/sim/stats", stats)
    app.router.add_get("/sim/carriers", carriers)
    app.router.add_get("/sim/carriers/{name}/faults", get_faults)
    app.router.add_put("/sim/carriers/{name}/faults", put_faults)
    app.router.add_patch("/sim/carriers/{name}/faults", put_faults)
    app.router.add_delete("/sim/carriers/{name}/faults", delete_faults)
    app.router.add_get("/sim/carriers/{name}/settings", get_settings)
    app.router.add_put("/sim/carriers/{name}/settings", put_settings)
    app.router.add_patch("/sim/carriers/{name}/settings", put_settings)
    return app
