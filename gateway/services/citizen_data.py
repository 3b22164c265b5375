"""A citizen's rights over their data: to see everything held about their number, and to have it
erased while the number stays blocked (what is erased and kept: gateway/store/privacy.py).

``smsgw citizens export / forget`` call it, and so can an operators' page: each method works in
the caller's transaction (``db.transaction(data.forget, number)`` or ``await db.run(...)``). A
forget cancels what still waited for the number, and the CRMs that sent those messages get the
``cancelled`` status callback, as after an opt-out by SMS.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway import clock
from gateway.domain.phone import normalize_msisdn
from gateway.store import privacy
from gateway.store.consent import StatusHook


class CitizenData:
    def __init__(self, status_hook: StatusHook | None = None):
        self.status_hook = status_hook  # the status callbacks of the messages a forget cancels

    def export(self, conn: Connection, number: str) -> tuple[str, dict | None]:
        """(E.164, everything held about it, or None when nothing is); raises InvalidNumber."""
        msisdn = normalize_msisdn(number)
        return msisdn, privacy.export(conn, msisdn)

    def forget(self, conn: Connection, number: str) -> tuple[str, dict]:
        """(E.164, what was erased and what was kept, and why); raises InvalidNumber."""
        msisdn = normalize_msisdn(number)
        return msisdn, privacy.forget(conn, msisdn, clock.utcnow(), self.status_hook)
