"""Wake-ups across processes on the PostgreSQL server: what one announces, the others' consumers
hear; its own announcement is not heard back; publishing is coalesced; a database that cannot be
reached leaves the wake-ups local (polling) without raising."""

from __future__ import annotations

import asyncio

import pytest

from gateway.signals import Signals
from gateway.store.notifications import ClusterWakeups

pytestmark = pytest.mark.postgres


async def _listening(url: str, sender: str) -> tuple[ClusterWakeups, Signals]:
    bridge = ClusterWakeups(url, sender, Signals.NAMES)
    signals = Signals(bridge.publish)
    bridge.listen(signals.wake)
    return bridge, signals


async def test_an_announcement_wakes_the_other_processes_not_the_announcer(postgres_url):
    api, api_signals = await _listening(postgres_url, "api/1")
    dispatch, dispatch_signals = await _listening(postgres_url, "dispatch/2")
    try:
        await asyncio.wait_for(asyncio.gather(api.listening.wait(), dispatch.listening.wait()), 10)
        api_signals.outbox.announce()
        api_signals.outbox.announce()  # coalesced with the one being sent, or sent after it
        assert await asyncio.wait_for(dispatch_signals.outbox.wait(), 5)
        api_signals.broadcasts.announce()
        assert await asyncio.wait_for(dispatch_signals.broadcasts.wait(), 5)
        assert not dispatch_signals.callbacks.is_set
        await api.idle()
        assert api.published <= 3
        assert api.received == 0  # its own are not delivered back
        assert dispatch.received == api.published
    finally:
        await api.close()
        await dispatch.close()


async def test_publishing_is_coalesced_and_never_raises_without_a_database(unused_tcp_port):
    bridge = ClusterWakeups(f"postgresql://nobody@127.0.0.1:{unused_tcp_port}/none", "a/1", Signals.NAMES)
    signals = Signals(bridge.publish)
    for _ in range(50):
        signals.outbox.announce()  # set locally, whatever the database does
    assert signals.outbox.is_set
    await asyncio.wait_for(bridge.idle(), 10)  # one try, given up: the consumers poll
    assert bridge.published == 0
    await bridge.close()
