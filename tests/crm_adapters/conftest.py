"""Fixtures of the CRM adapter tests: a controlled clock, the intake service, a GeoReport server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from config.crm_adapters import Open311AdapterSettings
from crm_adapters.open311.poller import Open311Poller
from gateway.domain.composer import Composer
from gateway.domain.notices import NoticePolicy
from gateway.domain.templates import TemplateRenderer
from gateway.services.intake import IntakeService
from gateway.signals import Signals
from gateway.store.intake import IntakeBatcher
from gateway.store.models import events, messages
from gateway.store.signatures import SeenSignatures

from .georeport import GeoReportServer

CITY = ZoneInfo("America/Mexico_City")
START = datetime(2026, 12, 1, 16, 0)  # naive UTC: the gateway's clock at the start of a test
CLIENT = "cesac"


class Clock:
    """The gateway's clock (naive UTC); the GeoReport server reads the same time as aware UTC."""

    def __init__(self, at: datetime = START):
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def aware(self) -> datetime:
        return self.at.replace(tzinfo=UTC)

    def advance(self, **delta) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def policy() -> NoticePolicy:
    return NoticePolicy(Composer(TemplateRenderer(CITY, "30311")))


@pytest.fixture
def intake(db, policy, clock) -> IntakeService:
    return IntakeService(
        db, policy, IntakeBatcher(db, policy, clock), Signals(), SeenSignatures(db, 300), now=clock
    )


@pytest.fixture
async def georeport(clock):
    server = GeoReportServer(now=clock.aware)
    await server.start()
    yield server
    await server.stop()


def adapter_settings(url: str, **values) -> Open311AdapterSettings:
    base = {
        "kind": "open311",
        "client": CLIENT,
        "url": url,
        "every_seconds": 60,
        "timeout_seconds": 2,
        "retries": 1,
        "retry_backoff_seconds": 0,
        "updates": "refetch",
    }
    return Open311AdapterSettings.model_validate({**base, **values})


@pytest.fixture
async def make_poller(db, intake, clock, georeport):
    made: list[Open311Poller] = []

    def make(sink=None, owner: str = "test-node", **values) -> Open311Poller:
        poller = Open311Poller(
            adapter_settings(georeport.url, **values),
            db,
            sink or intake,
            city_tz=CITY,
            owner=owner,
            now=clock,
        )
        made.append(poller)
        return poller

    yield make
    for poller in made:
        await poller.close()


def stored_events(db) -> list[tuple[str, str]]:
    """(event id, type) of every accepted event, in order."""
    with db.engine.connect() as conn:
        rows = conn.execute(select(events.c.event_key, events.c.type).order_by(events.c.id))
        return [tuple(r) for r in rows]


def bodies(db) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(messages.c.body).order_by(messages.c.id)).scalars())
