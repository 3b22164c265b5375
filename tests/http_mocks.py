"""aioresponses for aiohttp 3.14: standing in for third-party HTTP (a CRM's API).

aioresponses 0.7.9 builds responses without the ``stream_writer`` aiohttp 3.14 requires
(pnuckowski/aioresponses#289, fix pending in #288); aiohttp only reads its output_size.
"""

from __future__ import annotations

from types import SimpleNamespace

from aiohttp import ClientResponse
from aioresponses import aioresponses as _aioresponses


class CompatResponse(ClientResponse):
    def __init__(self, method, url, **kwargs):
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class aioresponses(_aioresponses):
    def add(self, url, method="GET", *args, **kwargs):
        kwargs.setdefault("response_class", CompatResponse)
        return super().add(url, method, *args, **kwargs)
