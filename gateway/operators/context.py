"""What the operators' HTTP layer shares: the auth context of the app and the request's session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web

from config.settings import DashboardSettings
from gateway import clock
from gateway.store.db import Database

from .lockout import LockoutPolicy
from .passwords import Passwords
from .sessions import OperatorSession, SessionPolicy


@dataclass
class OperatorAuth:
    db: Database
    sessions: SessionPolicy
    lockout: LockoutPolicy
    secure_cookies: bool = False  # Secure cookies even over plain HTTP (TLS ends at a proxy)
    trust_forwarded_for: bool = False  # the client address is the last X-Forwarded-For entry
    passwords: Passwords = field(default_factory=Passwords)
    now: Callable[[], datetime] = clock.utcnow

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: DashboardSettings,
        passwords: Passwords | None = None,
        now: Callable[[], datetime] = clock.utcnow,
    ) -> OperatorAuth:
        return cls(
            db=db,
            sessions=SessionPolicy(
                lifetime=timedelta(hours=settings.session_hours),
                idle=timedelta(minutes=settings.idle_minutes),
            ),
            lockout=LockoutPolicy(
                max_failures=settings.max_failures,
                max_failures_per_address=settings.max_failures_per_address,
                window=timedelta(minutes=settings.failure_window_minutes),
                lock_for=timedelta(minutes=settings.lockout_minutes),
            ),
            secure_cookies=settings.secure_cookies,
            trust_forwarded_for=settings.trust_forwarded_for,
            passwords=passwords or Passwords(),
            now=now,
        )


OPERATOR_AUTH = web.AppKey("operator_auth", OperatorAuth)
SESSION = web.RequestKey("operator_session", OperatorSession)


def client_address(request: web.Request, trust_forwarded_for: bool) -> str | None:
    """The client's address: the peer, or what a trusted proxy in front of us appended."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.remote
