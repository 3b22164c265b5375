"""HMAC request signatures (spec section 3).

``X-Smsgw-Client: <id>`` and ``X-Smsgw-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
"<t>.<raw body>")>``. Several v1 values may be given during a secret rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from .problems import Problem

CLIENT_HEADER = "X-Smsgw-Client"
SIGNATURE_HEADER = "X-Smsgw-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, slug="unauthorized")


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> str:
    """Returns the authenticated client id or raises a 401 Problem saying what is wrong."""
    client_id = headers.get(CLIENT_HEADER)
    if not client_id:
        raise _unauthorized(f"missing {CLIENT_HEADER} header")
    header = headers.get(SIGNATURE_HEADER)
    if not header:
        raise _unauthorized(f"missing {SIGNATURE_HEADER} header")
    secret = secrets.get(client_id)
    if secret is None:
        raise _unauthorized("unknown client")
    timestamp, candidates = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not (timestamp.isascii() and timestamp.isdigit()) or not candidates:
        raise _unauthorized(f"{SIGNATURE_HEADER} must be t=<unix seconds>,v1=<hex hmac>")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance_seconds:
        raise _unauthorized(
            f"signature timestamp is more than {tolerance_seconds} s away from the server clock"
        )
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(c.isascii() and hmac.compare_digest(expected, c.lower()) for c in candidates):
        raise _unauthorized("signature does not match")
    return client_id
