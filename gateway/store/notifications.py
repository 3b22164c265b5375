"""Wake-ups across processes on PostgreSQL: LISTEN / NOTIFY on one channel.

A process that made work (queued messages, accepted a broadcast, queued CRM callbacks) publishes
the wake-up's name; every other process listening sets its own wake-up of that name, so a message
accepted by an API process, or routed to a carrier whose binds another process holds, is claimed
at once rather than at the next poll. Publishing is coalesced (one NOTIFY per name while one is
being sent) and never blocks the caller; when the database cannot be reached the wake-ups are
simply local and every consumer's polling (its interval) is the fallback. After the listening
connection comes back, every wake-up is set once (what was published meanwhile was missed).

Two connections per process besides the pool: one listening (dispatch roles), one publishing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.engine import make_url

if TYPE_CHECKING:  # imported when used: a process on SQLite never loads the driver
    import psycopg

log = structlog.get_logger("store")

CHANNEL = "smsgw_wakeups"
_BACKOFF_MIN, _BACKOFF_MAX = 0.5, 30.0


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq reads it (without the +psycopg driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ClusterWakeups:
    def __init__(self, url: str, sender: str, names: Iterable[str]):
        """``sender``: this process's id (its own notifications are ignored); ``names``: the
        wake-ups that may be published (what is set after a reconnect)."""
        self.url = libpq_url(url)
        self.sender = sender
        self.names = tuple(names)
        self._pending: list[str] = []
        self._publisher: psycopg.AsyncConnection | None = None
        self._sending: asyncio.Task | None = None
        self._listening: asyncio.Task | None = None
        self._closed = False
        self.listening = asyncio.Event()  # set while LISTEN is in effect
        self.published = 0  # NOTIFYs sent (metrics, tests)
        self.received = 0  # notifications from other processes

    def publish(self, name: str) -> None:
        """Tell the other processes (soon, coalesced; never raises)."""
        if self._closed or name in self._pending:
            return
        self._pending.append(name)
        if self._sending is None or self._sending.done():
            with contextlib.suppress(RuntimeError):  # no running loop: local only
                self._sending = asyncio.get_running_loop().create_task(self._send(), name="notify")

    async def _send(self) -> None:
        while self._pending and not self._closed:
            name = self._pending[0]
            try:
                if self._publisher is None or self._publisher.closed:
                    import psycopg

                    self._publisher = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=5
                    )
                await self._publisher.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{self.sender}:{name}"))
                self.published += 1
            except Exception as exc:
                log.warning("wake-up not published; the others poll", error=type(exc).__name__)
                self._pending.clear()
                await self._close_publisher()
                return
            self._pending.pop(0)

    def listen(self, deliver: Callable[[str], None]) -> None:
        """Set ``deliver(name)`` for every wake-up another process publishes, until :meth:`close`."""
        self._listening = asyncio.get_running_loop().create_task(self._listen(deliver), name="listen")

    async def _listen(self, deliver: Callable[[str], None]) -> None:
        import psycopg

        backoff = _BACKOFF_MIN
        first = True
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if not first:  # missed while away: wake everything once
                        for name in self.names:
                            deliver(name)
                    first = False
                    backoff = _BACKOFF_MIN
                    async for notice in conn.notifies():
                        sender, _, name = notice.payload.partition(":")
                        if sender != self.sender:
                            self.received += 1
                            deliver(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("wake-up listener lost; polling until it is back", error=type(exc).__name__)
            self.listening.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def idle(self) -> None:
        """Until what was published so far was sent (or given up)."""
        while self._sending is not None and not self._sending.done():
            await asyncio.shield(self._sending)

    async def _close_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher.close()

    async def close(self) -> None:
        self._closed = True
        for task in (self._listening, self._sending):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._close_publisher()
