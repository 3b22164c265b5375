"""What the HTTP handlers need from the running gateway, built once by the composition root."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.domain.notices import NoticePolicy
from gateway.services.intake import IntakeService
from gateway.services.operator_actions import OperatorActions
from gateway.services.subscriptions import SubscriptionService
from gateway.signals import Signals
from gateway.store.db import Database
from gateway.store.signatures import SeenSignatures

from .client_limits import ClientLimits

if TYPE_CHECKING:
    from crm_adapters.callbacks import CallbackQueue
    from crm_adapters.mapping import Mapping as CrmMapping

    from .api.metrics import MetricsSources

# a /readyz check: what is wrong now, or None
ReadinessCheck = Callable[[], str | None]


@dataclass(frozen=True, slots=True)
class OpsDependencies:
    """Health, readiness and metrics: every role serves them."""

    db: Database
    metrics: MetricsSources
    readiness: Mapping[str, ReadinessCheck]


@dataclass(frozen=True, slots=True)
class ApiDependencies:
    """The CRM API (the ``api`` role)."""

    db: Database
    policy: NoticePolicy
    intake: IntakeService
    signatures: SeenSignatures
    signals: Signals
    callbacks: CallbackQueue
    secrets: Mapping[str, str]  # CRM client id -> shared secret
    crm_mappings: Mapping[str, CrmMapping]  # client id -> the mapping of its own JSON
    actions: OperatorActions
    subscriptions: SubscriptionService
    limits: ClientLimits  # each client's request rate and requests in progress
    max_body_bytes: int = 65536
    signature_tolerance_seconds: int = 300


OPS = web.AppKey("ops", OpsDependencies)
DEPS = web.AppKey("deps", ApiDependencies)
