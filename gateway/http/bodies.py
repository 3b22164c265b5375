"""The one reader of request bodies: the bytes, bounded; JSON with its media type checked and
parsed with bounds.

The body is read whole, however the client split it; more than the limit is a 413.
``Content-Type`` must be ``application/json`` (parameters such as charset allowed; the body is
UTF-8), else 415. The body is parsed with bounded numbers (integers of at most MAX_INT_DIGITS
digits, other numbers of at most MAX_NUMBER_CHARS characters and finite; NaN and Infinity are not
JSON) and nesting of at most MAX_DEPTH levels; anything else is a 400 naming ``body``, never a
500, and nothing is written.
"""

from __future__ import annotations

import json
import math

from aiohttp import web

from gateway.http.problems import Problem

BODY = web.RequestKey("body", bytes)  # the body, read once by the authentication middleware
MEDIA_TYPE = "application/json"
MAX_DEPTH = 32
MAX_INT_DIGITS = 20
MAX_NUMBER_CHARS = 40


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, however the client split it; over ``limit`` bytes is a 413."""
    too_large = Problem(
        413, "Request body too large", f"the body must be at most {limit} bytes", slug="too-large"
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks, size = [], 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class _OutOfBounds(ValueError):
    pass


class _NotJson(ValueError):
    pass


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _OutOfBounds(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _OutOfBounds(f"a number is longer than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfBounds(f"the number {text} is out of range")
    return value


def _constant(text: str) -> float:
    raise _NotJson(f"{text} is not a JSON value")


def _depth_exceeds(value: object, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _malformed(reason: str) -> Problem:
    detail = f"the body is not valid JSON: {reason}"
    return Problem(400, "Malformed JSON", detail, [("body", reason)], slug="malformed-json")


def _out_of_bounds(reason: str) -> Problem:
    return Problem(400, "JSON body out of bounds", f"body: {reason}", [("body", reason)], slug="json-bounds")


def parse_json(body: bytes) -> object:
    """The decoded body, or a 400 Problem naming ``body``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _OutOfBounds as exc:
        raise _out_of_bounds(str(exc)) from None
    except RecursionError:
        raise _out_of_bounds(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # json.JSONDecodeError, _NotJson, or int() refusing a number
        raise _malformed(str(exc)) from None
    # fewer brackets than the limit, counted in strings too, cannot nest deeper: no walk needed
    if text.count("{") + text.count("[") > MAX_DEPTH and _depth_exceeds(value, MAX_DEPTH):
        raise _out_of_bounds(f"nested more than {MAX_DEPTH} levels deep")
    return value


def check_media_type(request: web.Request) -> None:
    if request.content_type != MEDIA_TYPE:
        sent = request.headers.get("Content-Type") or "none"
        raise Problem(
            415,
            "Unsupported media type",
            f"the body must be sent as Content-Type: {MEDIA_TYPE} (got {sent})",
            [("Content-Type", f"must be {MEDIA_TYPE}")],
            slug="unsupported-media-type",
        )


def read_json(request: web.Request) -> object:
    """The authenticated request's body as JSON (415 or 400 Problems otherwise)."""
    check_media_type(request)
    return parse_json(request[BODY])
