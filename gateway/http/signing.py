"""HMAC request signatures: signing, and verifying a request's headers.

``X-Smsgw-Client: <id>`` and ``X-Smsgw-Signature: t=<unix seconds>,v2=<hex>`` where v2 is
HMAC-SHA256(secret, "<t>.<METHOD>.<path with query>.<raw body>") and the path with query is the
request target exactly as sent on the request line (``/api/v1/messages?status=failed``, percent
escapes as sent). Several v2 values may be given while a secret is rotated. The older v1,
HMAC-SHA256(secret, "<t>.<raw body>"), binds neither the method nor the path: it is accepted only
where the caller allows it (the events endpoints, for CRMs that sign v1 today).

The header is bounded before it is parsed (length, digits of ``t``); the HMAC is checked before the
timestamp, so what reaches the replay check (gateway/store/signatures.py) was signed with the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

from yarl import URL

from gateway.http.problems import Problem

CLIENT_HEADER = "X-Smsgw-Client"
SIGNATURE_HEADER = "X-Smsgw-Signature"
MAX_HEADER_LENGTH = 1024
MAX_TIMESTAMP_DIGITS = 12
FORMAT = "t=<unix seconds>,v2=<hex hmac>"


def v2_message(timestamp: int | str, method: str, path_qs: str, body: bytes) -> bytes:
    head = f"{timestamp}.{method.upper()}.{path_qs}."
    return head.encode("utf-8", "surrogateescape") + body


def v1_message(timestamp: int | str, body: bytes) -> bytes:
    return f"{timestamp}.".encode() + body


def _hmac(secret: str, message: bytes) -> str:
    # not hmac.digest(): its one-shot OpenSSL call releases the GIL whatever the size, and the
    # event loop then waits for the database thread to hand it back
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(
    secret: str,
    method: str,
    path_qs: str,
    body: bytes,
    timestamp: int | None = None,
    *,
    with_v1: bool = False,
) -> str:
    """The X-Smsgw-Signature value for one request; ``with_v1`` adds a v1 value for receivers
    that verify only v1."""
    t = int(time.time()) if timestamp is None else timestamp
    header = f"t={t},v2={_hmac(secret, v2_message(t, method, path_qs, body))}"
    if with_v1:
        header += f",v1={_hmac(secret, v1_message(t, body))}"
    return header


def sign_v1(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """A v1-only signature (what CRMs written for the first API version send)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_hmac(secret, v1_message(t, body))}"


def signed_headers(
    client_id: str, secret: str, method: str, path_qs: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    return {CLIENT_HEADER: client_id, SIGNATURE_HEADER: sign(secret, method, path_qs, body, timestamp)}


def target_of(url: str) -> str:
    """The request target an HTTP client (aiohttp, urllib) sends for ``url``: path and query,
    escaped as sent."""
    return URL(url).raw_path_qs


class Signer:
    """A client's signer that never makes the same signature twice.

    Two identical requests (method, target, body) signed in the same second would carry the same
    signature and the second would be refused as a replay; a repeat within the same second (a
    poll, a retry) is signed with an earlier second instead, inside the tolerance.
    """

    def __init__(self, client_id: str, secret: str, tolerance_seconds: int = 300):
        self.client_id = client_id
        self.secret = secret
        self.tolerance = tolerance_seconds
        self._used: dict[tuple[str, str, bytes], set[int]] = {}

    def timestamp(self, method: str, target: str, body: bytes) -> int:
        now = int(time.time())
        used = self._used.setdefault((method.upper(), target, hashlib.sha256(body).digest()), set())
        used.difference_update([t for t in used if t < now - self.tolerance])
        t = now
        while t in used:
            t -= 1
        if now - t >= self.tolerance:
            raise RuntimeError(f"more than {self.tolerance} identical requests within {self.tolerance} s")
        used.add(t)
        return t

    def headers(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        *,
        secret: str | None = None,
        client_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, str]:
        """The signature headers for ``method url`` with ``body``; ``secret``, ``client_id`` and
        ``timestamp`` override this signer's (tests of refusals)."""
        target = target_of(url)
        t = self.timestamp(method, target, body) if timestamp is None else timestamp
        return {
            CLIENT_HEADER: self.client_id if client_id is None else client_id,
            SIGNATURE_HEADER: sign(self.secret if secret is None else secret, method, target, body, t),
        }


def unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, slug="unauthorized")


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    timestamp: int
    v2: tuple[str, ...]
    v1: tuple[str, ...]


def parse_signature(header: str) -> SignatureHeader:
    """Bounded parse: a header over MAX_HEADER_LENGTH characters or a ``t`` of more than
    MAX_TIMESTAMP_DIGITS digits is refused before anything is converted. Unknown schemes are
    ignored (a later version may add one)."""
    if len(header) > MAX_HEADER_LENGTH:
        raise unauthorized(f"{SIGNATURE_HEADER} is longer than {MAX_HEADER_LENGTH} characters")
    stamps: list[str] = []
    v2: list[str] = []
    v1: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            stamps.append(value)
        elif key == "v2":
            v2.append(value)
        elif key == "v1":
            v1.append(value)
    if len(stamps) != 1 or not (v2 or v1):
        raise unauthorized(f"{SIGNATURE_HEADER} must be {FORMAT}")
    (stamp,) = stamps
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > MAX_TIMESTAMP_DIGITS:
        raise unauthorized(
            f"{SIGNATURE_HEADER} must be {FORMAT}: t is unix seconds (at most {MAX_TIMESTAMP_DIGITS} digits)"
        )
    return SignatureHeader(int(stamp), tuple(v2), tuple(v1))


@dataclass(frozen=True, slots=True)
class Verified:
    client_id: str
    timestamp: int
    digest: bytes  # SHA-256 of what the signature covers: the key of the replay check


def _matches(expected: str, candidates: tuple[str, ...]) -> bool:
    return any(c.isascii() and hmac.compare_digest(expected, c.lower()) for c in candidates)


def verify(
    headers: Mapping[str, str],
    method: str,
    path_qs: str,
    body: bytes,
    secrets: Mapping[str, str],
    tolerance_seconds: int = 300,
    now: float | None = None,
    *,
    allow_v1: bool = False,
) -> Verified:
    """The authenticated request, or a 401 Problem saying what is wrong.

    Where v1 is allowed the replay key covers only the timestamp and the body (what v1 signs),
    whichever scheme matched, so a request carrying both cannot be replayed once per scheme.
    """
    client_id = headers.get(CLIENT_HEADER)
    if not client_id:
        raise unauthorized(f"missing {CLIENT_HEADER} header")
    header = headers.get(SIGNATURE_HEADER)
    if not header:
        raise unauthorized(f"missing {SIGNATURE_HEADER} header")
    signature = parse_signature(header)
    secret = secrets.get(client_id)
    if secret is None:
        raise unauthorized("unknown client")
    t = signature.timestamp
    if not signature.v2 and not allow_v1:
        raise unauthorized(
            "v1 signatures are accepted only on the events endpoints; sign this request with v2 "
            '(HMAC-SHA256 of "<t>.<METHOD>.<path with query>.<raw body>")'
        )
    v2 = v2_message(t, method, path_qs, body)
    matched = _matches(_hmac(secret, v2), signature.v2)
    if not matched and allow_v1 and signature.v1:
        matched = _matches(_hmac(secret, v1_message(t, body)), signature.v1)
    if not matched:
        raise unauthorized("signature does not match")
    now = time.time() if now is None else now
    if abs(now - t) > tolerance_seconds:
        raise unauthorized(
            f"signature timestamp is more than {tolerance_seconds} s away from the server clock"
        )
    signed = v1_message(t, body) if allow_v1 else v2
    return Verified(client_id, t, hashlib.sha256(signed).digest())
