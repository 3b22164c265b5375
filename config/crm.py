"""The CRMs that send case events: ``[[crm_clients]]`` (an id, its shared secret, where its
status callbacks go) and ``[callbacks]`` (how those are delivered). The CRMs connected otherwise:
config/crm_adapters.py."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator

from .base import Section
from .secrets import WithSecrets


class CrmClientSettings(WithSecrets):
    secrets: ClassVar[dict[str, str]] = {"secret": "secrets"}
    id: str = Field(min_length=1)
    secret: str = Field("", repr=False, exclude=True)
    secret_env: str
    callback_url: str | None = None
    # this client's requests, counted by each gateway process on its own (a 429 beyond them)
    requests_per_second: float = Field(2000, gt=0)
    burst: int = Field(4000, ge=1)  # requests accepted at once after a quiet spell
    max_concurrent: int = Field(64, ge=1)  # requests in progress at a time

    @field_validator("callback_url")
    @classmethod
    def _check_callback_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"https?://[^/\s]+", v):
            raise ValueError(f"expected an http:// or https:// URL, got {v!r}")
        return v


class CallbacksSettings(Section):
    timeout_seconds: float = Field(10, gt=0)
    max_attempts: int = Field(10, ge=1)
    backoff_seconds: float = Field(5, gt=0)  # first retry; doubles up to max_backoff_seconds
    max_backoff_seconds: float = Field(1800, gt=0)
    concurrency: int = Field(8, ge=1, le=100)
