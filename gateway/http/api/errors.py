"""The errors every signed API operation can answer, described once for the OpenAPI document."""

from __future__ import annotations

from ..authentication import V1_ROUTES
from ..bodies import MAX_DEPTH, MAX_INT_DIGITS, MAX_NUMBER_CHARS
from ..operations import Header, Reply, problem

V2 = 'HMAC-SHA256(secret, "<t>.<METHOD>.<path with query>.<raw body>")'
V1 = 'HMAC-SHA256(secret, "<t>.<raw body>")'
SIGNATURE_FORMAT = (
    f"`t=<unix seconds>,v2=<hex {V2}>`, the path with query being the request target exactly as "
    "sent on the request line; several v2 values may be given while a secret is rotated. Each "
    f"signature is accepted once. Only {' and '.join(f'{m} {p}' for m, p in sorted(V1_ROUTES))} also "
    f"accept the older `v1=<hex {V1}>`, which binds neither method nor path."
)
BAD_JSON = (
    f"the body is not UTF-8 JSON, nests more than {MAX_DEPTH} levels, or has an integer of more than "
    f"{MAX_INT_DIGITS} digits or another number of more than {MAX_NUMBER_CHARS} characters "
    "(`field` is `body`)"
)

ERRORS: dict[str, Reply] = {
    "400": problem("Malformed request (bad query parameter); `field` names it"),
    "401": problem(
        "Missing client or signature header, unknown client, malformed signature header (over 1,024 "
        "characters, a `t` of more than 12 digits), a signature that does not match this method, "
        "path, query and body, a timestamp more than 5 minutes off, or a signature already used (a "
        "replay: sign every request afresh); `detail` says which"
    ),
    "404": problem("No such resource for this client"),
    "409": problem("The action does not apply in the resource's current state"),
    "413": problem("Request body too large"),
    "415": problem("The body is not sent as `Content-Type: application/json`"),
    "422": problem("The event is invalid; `field` and `invalid_params` name every field at fault"),
    "429": problem(
        "Too many requests from this client: more per second than its `requests_per_second` (after "
        "its `burst`), or more than its `max_concurrent` in progress; each gateway process counts on "
        "its own. Nothing was done: send it again after `Retry-After` seconds (signed afresh)",
        (Header("Retry-After", "seconds to wait before sending again", {"type": "integer", "minimum": 1}),),
    ),
    "500": problem("Internal error (logged)"),
}


# what every signed operation can answer, whatever its declaration lists (the document adds them)
SIGNED_ERRORS = ("401", "429")


def errors(*codes: str) -> dict[str, Reply]:
    return {code: ERRORS[code] for code in codes}
