"""The operators' HTTP layer on the dashboard app: login page, cookies, CSRF, roles, 401 / redirect."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from config.settings import DashboardSettings
from crm_adapters.callbacks import CallbackQueue
from gateway.domain.operators import Role
from gateway.http.control import ControlRoom
from gateway.http.dashboard import MOUNT, DashboardContext, dashboard_app
from gateway.http.operators.context import audit
from gateway.http.operators.web import SESSION_COOKIE, requires
from gateway.roles import build_policy
from gateway.services.citizen_data import CitizenData
from gateway.services.operator_actions import OperatorActions
from gateway.services.operator_auth import OperatorAuth
from gateway.signals import Signals
from gateway.store.models import audit_log
from tests.conftest import make_settings

from .helpers import add_operator, cheap_passwords, hidden_field, sign_in


class Clock:
    def __init__(self):
        from gateway import clock

        self.now = clock.utcnow()

    def __call__(self):
        return self.now


@requires(Role.OPERATOR)
async def act(request: web.Request) -> web.Response:
    await audit(request, "test.act", "message:42", {"why": "a test"})
    return web.json_response({"done": True})


async def _client(db, clock, **settings) -> TestClient:
    auth = OperatorAuth.from_settings(
        db, DashboardSettings(**settings), passwords=cheap_passwords(), now=clock
    )
    settings = make_settings({})
    actions = OperatorActions(db, build_policy(settings), Signals(), CallbackQueue({}), carriers=["telcel"])
    control = ControlRoom(db, actions, CitizenData(), settings.gateway.tz)
    dashboard = dashboard_app(DashboardContext(db, auth, list, asyncio.Event().wait, control, dict))
    dashboard.router.add_post("/act", act)  # a state-changing action, as the later features add
    root = web.Application()
    root.add_subapp(MOUNT, dashboard)
    client = TestClient(TestServer(root))
    await client.start_server()
    return client


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def client(db, clock):
    client = await _client(db, clock, max_failures=3, lockout_minutes=10)
    yield client
    await client.close()


def base(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_the_login_page_is_spanish_first_with_english_available(client):
    resp = await client.get("/dashboard/login")
    page = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert '<html lang="es">' in page and "Iniciar sesión" in page
    assert 'name="username"' in page and 'name="password"' in page and hidden_field(page, "csrf_token")
    resp = await client.get("/dashboard/login?lang=en")
    assert "Sign in" in await resp.text() and resp.cookies["smsgw_lang"].value == "en"
    assert "Sign in" in await (await client.get("/dashboard/login")).text()  # remembered


async def test_nothing_answers_without_a_session(client):
    resp = await client.get("/dashboard/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/dashboard/login?next=%2Fdashboard%2F"
    for path in ("/dashboard/data", "/dashboard/events", "/dashboard/audit"):
        resp = await client.get(path)
        assert resp.status == 401, path
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["title"] == "Sign in first"
    resp = await client.post("/dashboard/logout")
    assert resp.status == 401


async def test_login_sets_a_strict_http_only_session_cookie(db, client):
    add_operator(db, "ana", "correct horse", Role.VIEWER)
    resp = await sign_in(client.session, base(client), "ana", "correct horse")
    assert resp.status == 303 and resp.headers["Location"] == "/dashboard/"
    cookie = resp.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/dashboard"
    assert not cookie["secure"]  # plain HTTP without secure_cookies
    page = await (await client.get("/dashboard/")).text()
    assert "ana · consulta" in page and "Cerrar sesión" in page
    data = await client.get("/dashboard/data")
    assert data.status == 200 and "stats" in await data.json()


async def test_secure_cookies_behind_a_tls_proxy(db, clock):
    add_operator(db, "ana", "correct horse")
    client = await _client(db, clock, secure_cookies=True)
    try:
        login_page = await client.get("/dashboard/login")
        assert login_page.cookies["smsgw_login"]["secure"]
        token = hidden_field(await login_page.text(), "csrf_token")
        form = {"username": "ana", "password": "correct horse", "csrf_token": token}
        # the proxy speaks HTTPS to the browser, which sends Secure cookies; the client here would not
        cookie = {"Cookie": f"smsgw_login={token}"}
        resp = await client.post("/dashboard/login", data=form, headers=cookie, allow_redirects=False)
        assert resp.status == 303 and resp.cookies[SESSION_COOKIE]["secure"]
    finally:
        await client.close()


async def test_login_without_its_form_token_is_refused(db, client):
    add_operator(db, "ana", "correct horse")
    await client.get("/dashboard/login")
    form = {"username": "ana", "password": "correct horse", "csrf_token": "forged"}
    resp = await client.post("/dashboard/login", data=form, allow_redirects=False)
    assert resp.status == 403 and resp.content_type == "application/problem+json"
    assert (await resp.json())["type"].endswith("/csrf")
    assert SESSION_COOKIE not in resp.cookies


async def test_wrong_password_and_lockout_do_not_tell_whether_the_account_exists(db, client):
    add_operator(db, "ana", "correct horse")
    answers = {}
    for name in ("ana", "nadie"):
        for _ in range(2):
            resp = await sign_in(client.session, base(client), name, "wrong")
            assert resp.status == 401
        third = await sign_in(client.session, base(client), name, "wrong")
        answers[name] = (third.status, third.headers["Retry-After"])
    assert answers["ana"] == answers["nadie"] == (429, "600")
    # the address has 6 failures of its 20: the right password still fails for the locked account
    assert (await sign_in(client.session, base(client), "ana", "correct horse")).status == 429
    resp = await client.get("/dashboard/login")
    token = hidden_field(await resp.text(), "csrf_token")
    form = {"username": "ana", "password": "correct horse", "csrf_token": token}
    page = await (await client.post("/dashboard/login", data=form)).text()
    assert "Demasiados intentos fallidos. Intente de nuevo en 10 min." in page


async def test_empty_fields_are_asked_for_again(client):
    resp = await client.get("/dashboard/login")
    token = hidden_field(await resp.text(), "csrf_token")
    resp = await client.post(
        "/dashboard/login", data={"username": "ana", "password": "", "csrf_token": token}
    )
    assert resp.status == 422 and "Escriba su usuario y su contraseña." in await resp.text()


async def _signed_in(db, client, role: Role = Role.OPERATOR) -> str:
    add_operator(db, "ana", "correct horse", role)
    await sign_in(client.session, base(client), "ana", "correct horse")
    page = await (await client.get("/dashboard/")).text()
    return hidden_field(page, "csrf_token")


async def test_state_changes_need_the_session_s_csrf_token(db, client):
    token = await _signed_in(db, client)
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        resp = await client.post("/dashboard/act", headers=headers, json={})
        assert resp.status == 403, headers
        body = await resp.json()
        assert (
            resp.content_type == "application/problem+json" and body["title"] == "CSRF token missing or wrong"
        )
    resp = await client.post("/dashboard/act", data={"csrf_token": "wrong"})
    assert resp.status == 403
    assert (await client.post("/dashboard/act", headers={"X-CSRF-Token": token})).status == 200
    assert (await client.post("/dashboard/act", data={"csrf_token": token})).status == 200
    a = audit_log.c
    with db.engine.connect() as conn:
        row = conn.execute(
            select(a.actor, a.action, a.target, a.detail, a.address).where(a.action == "test.act")
        ).first()
    assert tuple(row) == ("ana", "test.act", "message:42", {"why": "a test"}, "127.0.0.1")


async def test_logout_needs_the_token_then_the_session_is_gone(db, client):
    token = await _signed_in(db, client)
    assert (await client.post("/dashboard/logout", allow_redirects=False)).status == 403
    resp = await client.post("/dashboard/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/dashboard/login?bye=1"
    assert resp.cookies[SESSION_COOKIE].value == ""  # deleted
    assert (await client.get("/dashboard/data")).status == 401
    resp = await client.get("/dashboard/login?bye=1")
    assert "Sesión cerrada." in await resp.text()


async def test_a_stolen_cookie_is_useless_after_logout(db, client):
    token = await _signed_in(db, client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/dashboard/"))[SESSION_COOKIE].value
    await client.post("/dashboard/logout", data={"csrf_token": token})
    resp = await client.get("/dashboard/data", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    assert resp.status == 401
    page = await client.get(
        "/dashboard/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}, allow_redirects=False
    )
    assert page.status == 303 and "expired=1" in page.headers["Location"]


async def test_an_idle_session_expires(db, client, clock):
    await _signed_in(db, client)
    clock.now += timedelta(minutes=31)
    assert (await client.get("/dashboard/data")).status == 401


async def test_roles_viewer_reads_operator_acts_admin_manages(db, client):
    token = await _signed_in(db, client, Role.VIEWER)
    assert (await client.get("/dashboard/data")).status == 200
    resp = await client.post("/dashboard/act", headers={"X-CSRF-Token": token})
    assert (
        resp.status == 403 and (await resp.json())["detail"] == "this needs the role operator; ana is viewer"
    )
    assert (await client.get("/dashboard/audit")).status == 403


async def test_an_admin_reads_the_audit_log(db, client):
    await _signed_in(db, client, Role.ADMIN)
    resp = await client.get("/dashboard/audit?limit=5")
    entries = (await resp.json())["entries"]
    assert resp.status == 200 and entries[0]["action"] == "login" and entries[0]["actor"] == "ana"
    resp = await client.get("/dashboard/audit?limit=0")
    assert resp.status == 422 and (await resp.json())["field"] == "limit"


async def test_after_login_the_operator_goes_where_they_were_going_but_never_off_site(db, client):
    add_operator(db, "ana", "correct horse")
    cases = [
        ("/dashboard/data", "/dashboard/data"),
        ("https://evil.example/", "/dashboard/"),
        ("/dashboard//evil.example", "/dashboard/"),
        ("/dashboard/login", "/dashboard/"),
    ]
    for wanted, landed in cases:
        client.session.cookie_jar.clear()  # signed out: the login page shows
        resp = await client.get("/dashboard/login")
        token = hidden_field(await resp.text(), "csrf_token")
        form = {"username": "ana", "password": "correct horse", "csrf_token": token, "next": wanted}
        resp = await client.post("/dashboard/login", data=form, allow_redirects=False)
        assert resp.headers["Location"] == landed, wanted


async def test_a_login_form_opened_before_signing_in_still_works(db, client):
    add_operator(db, "ana", "correct horse")
    old_tab = hidden_field(await (await client.get("/dashboard/login")).text(), "csrf_token")
    await sign_in(client.session, base(client), "ana", "correct horse")
    form = {"username": "ana", "password": "correct horse", "csrf_token": old_tab}
    resp = await client.post("/dashboard/login", data=form, allow_redirects=False)
    assert resp.status == 303
