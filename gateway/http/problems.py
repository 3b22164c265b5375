"""RFC 9457 problem details: every API error is application/problem+json naming the field at fault."""

from __future__ import annotations

import json

from aiohttp import web

PROBLEM_TYPE = "https://smsgw.example/problems/"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: list[tuple[str, str]] | None = None,
        slug: str | None = None,
    ):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.slug = slug or title.lower().replace(" ", "-")

    def response(self, instance: str | None = None) -> web.Response:
        body: dict = {"type": PROBLEM_TYPE + self.slug, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["field"] = self.errors[0][0]
            body["invalid_params"] = [{"name": name, "reason": reason} for name, reason in self.errors]
        return web.Response(
            status=self.status,
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/problem+json",
        )


def invalid(errors: list[tuple[str, str]]) -> Problem:
    detail = "; ".join(f"{name}: {reason}" if name else reason for name, reason in errors)
    return Problem(422, "Invalid event", detail, errors, slug="invalid-event")
