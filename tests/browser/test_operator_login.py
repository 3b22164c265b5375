"""An operator in a real browser: the login page, refusals and lockout, the live dashboard, logout."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import Api, case_received

from .conftest import MAX_FAILURES, OPERATOR, PASSWORD, screenshot

pytestmark = pytest.mark.browser


async def sign_in(page, username: str, password: str) -> None:
    await page.fill('input[name="username"]', username)
    await page.fill('input[name="password"]', password)
    await page.click('button[type="submit"]')
    await page.wait_for_load_state()


async def test_the_dashboard_sends_a_stranger_to_the_login_page(gateway, page):
    await page.goto(f"{gateway.url}/dashboard/")
    assert re.search(r"/dashboard/login\?next=", page.url)
    assert await page.title() == "Iniciar sesión · smsgw"
    assert await page.locator("h2").inner_text() == "Iniciar sesión"
    assert await page.locator('input[name="username"]').is_visible()
    assert await page.locator('input[name="password"]').get_attribute("type") == "password"
    await screenshot(page, "login-es")
    await page.click("text=English")
    assert await page.locator("h2").inner_text() == "Sign in"
    await screenshot(page, "login-en")
    await page.set_viewport_size({"width": 360, "height": 740})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360  # fits a phone
    await screenshot(page, "login-en-360px")


async def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(gateway, page):
    await page.goto(f"{gateway.url}/dashboard/login")
    await sign_in(page, OPERATOR, "not the password")
    alert = page.get_by_role("alert")
    assert await alert.inner_text() == "Usuario o contraseña incorrectos."
    assert await page.input_value('input[name="username"]') == OPERATOR  # kept; the password is not
    assert await page.input_value('input[name="password"]') == ""
    await screenshot(page, "login-refused")
    for _ in range(MAX_FAILURES - 1):
        await sign_in(page, OPERATOR, "still not it")
    assert (await alert.inner_text()).startswith("Demasiados intentos fallidos.")
    await sign_in(page, OPERATOR, PASSWORD)  # the right password, but the account is locked
    assert "/dashboard/login" in page.url
    assert (await alert.inner_text()).startswith("Demasiados intentos fallidos.")
    await screenshot(page, "login-locked")


async def test_an_operator_signs_in_watches_delivery_live_and_signs_out(gateway, page):
    await page.goto(f"{gateway.url}/dashboard/")
    await sign_in(page, OPERATOR, PASSWORD)
    assert page.url == f"{gateway.url}/dashboard/"
    assert await page.locator("#who").inner_text() == "ana · administrador"
    await page.wait_for_function("document.getElementById('state').textContent === 'en vivo'")
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == "smsgw_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    api = Api(gateway.url)  # a CRM posts a case; the page shows its delivery without a reload
    try:
        status, body = await api.post_event(case_received())
        assert status == 202
        await api.wait_status(gateway, body["message_ids"][0], "delivered")
    finally:
        await api.close()
    row = page.locator("#recent tbody tr", has_text="+52******5678")
    await row.locator(".pill.delivered").wait_for()
    assert "entregado" in await row.inner_text()
    await screenshot(page, "dashboard-live")

    await page.click("#logout")
    await page.wait_for_url(re.compile(r"/dashboard/login\?bye=1$"))
    assert await page.get_by_role("status").inner_text() == "Sesión cerrada."
    await screenshot(page, "logged-out")
    for path in ("data", "events"):
        assert (await page.request.get(f"{gateway.url}/dashboard/{path}")).status == 401
    await page.goto(f"{gateway.url}/dashboard/")
    assert "/dashboard/login" in page.url
    assert not [c for c in await page.context.cookies() if c["name"] == "smsgw_session"]


async def test_an_open_dashboard_goes_to_the_login_page_when_its_session_ends(gateway, page):
    await page.goto(f"{gateway.url}/dashboard/login")
    await sign_in(page, OPERATOR, PASSWORD)
    await page.wait_for_function("document.getElementById('state').textContent === 'en vivo'")
    other = await page.context.new_page()  # the same operator signs out in another tab
    await other.goto(f"{gateway.url}/dashboard/")
    await other.click("#logout")
    await other.wait_for_url(re.compile(r"/dashboard/login"))  # signed out before the tab closes
    await other.close()
    api = Api(gateway.url)  # the next status change wakes the first tab's stream, which ends
    try:
        status, _ = await api.post_event(case_received())
        assert status == 202
    finally:
        await api.close()
    await page.wait_for_url(re.compile(r"/dashboard/login\?expired=1"))
    assert await page.get_by_role("status").inner_text() == "Su sesión terminó. Inicie sesión de nuevo."
    await screenshot(page, "session-ended")
