"""The configured ``[[crm_adapters]]`` of a running gateway: built, checked, scheduled, stopped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import structlog
from apscheduler.schedulers.base import BaseScheduler

from config.crm_adapters import MappedJsonAdapterSettings, Open311AdapterSettings
from config.settings import Settings
from gateway import clock
from gateway.services.intake import IntakeService
from gateway.store.db import Database

from .mapping import CrmInbound, Mapping, load_mapping
from .open311.poller import Open311Poller
from .open311.refresh import CitizenInbox, FreshStatusInbox

log = structlog.get_logger("crm_adapters")


def mapping_path(settings: Settings, value: str) -> Path:
    """A mapping file named in the configuration: relative to the configuration file's folder."""
    path = Path(value).expanduser()
    if not path.is_absolute() and settings.source_path is not None:
        path = settings.source_path.parent / path
    return path


def load_mappings(settings: Settings) -> dict[str, Mapping]:
    """Every client's mapping, checked; raises ConfigError naming the key."""
    mappings = {}
    for i, adapter in enumerate(settings.crm_adapters):
        if isinstance(adapter, MappedJsonAdapterSettings):
            path = mapping_path(settings, adapter.mapping)
            mappings[adapter.client] = load_mapping(path, settings.gateway.tz, f"crm_adapters[{i}].mapping")
    return mappings


class CrmAdapters:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        intake: IntakeService,
        *,
        owner: str,
        now: Callable[[], datetime] = clock.now,
    ):
        self.db = db
        self.intake = intake
        self.mappings = load_mappings(settings)
        self.pollers = {
            a.adapter_name: Open311Poller(a, db, intake, city_tz=settings.gateway.tz, owner=owner, now=now)
            for a in settings.crm_adapters
            if isinstance(a, Open311AdapterSettings)
        }
        self.now = now

    @property
    def inbound(self) -> CrmInbound:
        return CrmInbound(self.intake, self.mappings)

    def install(self, scheduler: BaseScheduler) -> None:
        for poller in self.pollers.values():
            poller.install(scheduler)
            log.info("CRM adapter scheduled", adapter=poller.name, every_seconds=poller.every_seconds)

    def citizen_inbox(self, inbox: CitizenInbox) -> CitizenInbox:
        """The inbox to hand the SMPP side: ESTADO re-reads Open311 requests when it is worth it."""
        if not any(p.s.refresh_status_after_seconds > 0 for p in self.pollers.values()):
            return inbox
        return FreshStatusInbox(inbox, self.db, self.pollers, self.now)

    async def close(self) -> None:
        for poller in self.pollers.values():
            await poller.close()
