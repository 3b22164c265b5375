"""An application side for the link's tests: records what the link reports and answers as told."""

from __future__ import annotations

import asyncio

from smpp_client.events import BindChanged, DeliveryReceipt, MobileMessage


class AcknowledgingEvents:
    """Every receipt and message is stored at once, unless ``hold`` keeps its future for the test
    to resolve (or fail); ``fail_messages`` messages fail first."""

    def __init__(self, hold: bool = False, fail_messages: int = 0):
        self.hold = hold
        self.fail_messages = fail_messages
        self.receipts: list[DeliveryReceipt] = []
        self.messages: list[MobileMessage] = []
        self.binds: list[BindChanged] = []
        self.pending: list[asyncio.Future] = []
        self.arrived = asyncio.Event()
        self.bind_seen = asyncio.Event()

    def _stored(self, fail: bool = False) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if self.hold:
            self.pending.append(future)
        elif fail:
            future.set_exception(RuntimeError("the inbox is down"))
        else:
            future.set_result(None)
        self.arrived.set()
        return future

    def receipt(self, receipt: DeliveryReceipt) -> asyncio.Future:
        self.receipts.append(receipt)
        return self._stored()

    def mobile_message(self, message: MobileMessage) -> asyncio.Future:
        fail = self.fail_messages > 0
        if fail:
            self.fail_messages -= 1
        else:
            self.messages.append(message)
        return self._stored(fail)

    def bind_changed(self, change: BindChanged) -> None:
        self.binds.append(change)
        self.bind_seen.set()
