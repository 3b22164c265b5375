"""A request's query string, validated by a pydantic model.

A list field takes every value of its parameter, any other field the first. Any error is a
problem (400 unless told) naming every parameter at fault; where the model forbids extra
parameters, an unknown one is named with the known ones.
"""

from __future__ import annotations

import typing
from typing import TypeVar

from multidict import MultiMapping
from pydantic import BaseModel, ValidationError

from .problems import Problem

M = TypeVar("M", bound=BaseModel)


def _is_list(annotation: object) -> bool:
    return typing.get_origin(annotation) is list


def whole_number(value: object, upper: int) -> int:
    """A query value that must be an integer from 1 to ``upper`` (ASCII digits only)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) <= upper:
        return int(value)
    raise ValueError(f"must be an integer from 1 to {upper}")


def bad_query(errors: list[tuple[str, str]], status: int = 400) -> Problem:
    detail = "; ".join(f"{name}: {reason}" for name, reason in errors)
    return Problem(status, "Invalid query parameter", detail, errors, slug="invalid-query")


def parse_query(model: type[M], query: MultiMapping[str], status: int = 400) -> M:
    fields = model.model_fields
    data: dict[str, object] = {}
    for name in dict.fromkeys(query.keys()):
        field = fields.get(name)
        data[name] = query.getall(name) if field is not None and _is_list(field.annotation) else query[name]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        known = ", ".join(sorted(fields))
        errors = []
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "query"
            if error["type"] == "extra_forbidden":
                errors.append((name, f"unknown parameter; known: {known}"))
            else:
                errors.append((name, error["msg"].removeprefix("Value error, ")))
        raise bad_query(errors, status) from None
