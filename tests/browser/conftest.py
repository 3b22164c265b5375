"""Browser tests: Debian's headless Chromium driven by Playwright, against the real gateway and
simulator. Without /usr/bin/chromium they fail (they do not skip) unless SMSGW_SKIP_BROWSER=1;
``.ci/run`` installs it. Screenshots go to test-artifacts/screenshots/ (kept by CI, not in git).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from config.settings import DashboardSettings
from gateway.domain.operators import Role
from gateway.roles import build
from tests.integration import conftest as integration
from tests.integration.conftest import carrier_ports, gateway_settings
from tests.operators.helpers import add_operator

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
simulator = integration.simulator  # the bundled SMSC simulator, on ephemeral ports
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
MAX_FAILURES = 3
OPERATOR, PASSWORD = "ana", "correct horse battery"


@pytest.fixture(scope="session")
def chromium() -> str:
    if not CHROMIUM.exists():
        if os.environ.get("SMSGW_SKIP_BROWSER") == "1":
            pytest.skip(f"{CHROMIUM} is missing and SMSGW_SKIP_BROWSER=1")
        pytest.fail(
            f"the browser tests need Debian's headless Chromium at {CHROMIUM}: `apt-get install -y chromium` "
            "as root (.ci/run does it), or set SMSGW_SKIP_BROWSER=1 to skip them",
            pytrace=False,
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(CHROMIUM)


@pytest.fixture
async def browser(chromium):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser):
    context = await browser.new_context(locale="es-MX", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        await context.close()


@pytest.fixture
async def gateway(tmp_path, sqlite_template, simulator):
    """The real gateway on its own SQLite file, bound to the simulator, with one admin operator."""
    path = tmp_path / "smsgw.db"
    shutil.copy(sqlite_template, path)
    settings = gateway_settings(f"sqlite:///{path}", carrier_ports(simulator))
    settings = settings.model_copy(update={"dashboard": DashboardSettings(max_failures=MAX_FAILURES)})
    runtime = build(settings)
    await runtime.start()
    assert await runtime.pool.wait_bound(5)
    add_operator(runtime.db, OPERATOR, PASSWORD, Role.ADMIN)
    yield runtime
    await runtime.stop()


async def screenshot(page, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
