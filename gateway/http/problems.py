"""RFC 9457 problem details: every API error is application/problem+json naming the field at fault."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from pydantic import Field

from .responses import Answer, absent

PROBLEM_TYPE = "https://smsgw.example/problems/"
MEDIA_TYPE = "application/problem+json"


class InvalidParam(Answer):
    name: str
    reason: str


class ProblemDetails(Answer):
    """RFC 9457 problem details"""

    type: str = Field(json_schema_extra={"format": "uri"})
    title: str
    status: int
    detail: str | None = absent("what went wrong, for a person")
    instance: str | None = absent("the request's path")
    field: str | None = absent("the (first) field at fault, dotted path")
    invalid_params: list[InvalidParam] | None = absent("every field at fault, with the reason")


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: list[tuple[str, str]] | None = None,
        slug: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.slug = slug or title.lower().replace(" ", "-")
        self.headers = dict(headers or {})  # sent with the answer (Retry-After…)

    def details(self, instance: str | None = None) -> ProblemDetails:
        return ProblemDetails(
            type=PROBLEM_TYPE + self.slug,
            title=self.title,
            status=self.status,
            detail=self.detail or None,
            instance=instance or None,
            field=self.errors[0][0] if self.errors else None,
            invalid_params=[InvalidParam(name=n, reason=r) for n, r in self.errors] or None,
        )

    def response(self, instance: str | None = None) -> web.Response:
        return web.Response(
            status=self.status,
            text=self.details(instance).dump(),
            content_type=MEDIA_TYPE,
            headers=self.headers or None,
        )


def invalid(errors: list[tuple[str, str]]) -> Problem:
    detail = "; ".join(f"{name}: {reason}" if name else reason for name, reason in errors)
    return Problem(422, "Invalid event", detail, errors, slug="invalid-event")
