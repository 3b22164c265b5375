"""How the gateway answers over HTTP: a pydantic model's JSON (what the OpenAPI document describes),
or, where no model exists yet, a dict's.

Times are UTC, written with ``Z``. A field that is sometimes left out (rather than null) is
declared with :func:`absent`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

JSON = "application/json"


def _as_utc(moment: datetime) -> datetime:
    """The database's naive UTC times become aware, so they are written with ``Z``."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_as_utc)]


def not_null(schema: dict[str, Any]) -> None:
    """A field's JSON schema without its null variant and its null default (in place)."""
    schema.pop("default", None)
    variants = schema.pop("anyOf", None)
    if variants:
        schema.update(next(v for v in variants if v.get("type") != "null"))
    elif isinstance(schema.get("type"), list):
        schema["type"] = [t for t in schema["type"] if t != "null"]
        if len(schema["type"]) == 1:
            schema["type"] = schema["type"][0]


def absent(description: str) -> Any:
    """A field the answer leaves out when it does not apply (never null)."""
    return Field(default=None, description=description, json_schema_extra=not_null)


class Answer(BaseModel):
    """The base of every answer's model: nothing but its declared fields."""

    model_config = ConfigDict(extra="forbid")
    absent_fields: ClassVar[frozenset[str]] = frozenset()  # declared with absent()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields.items()
        cls.absent_fields = frozenset(name for name, info in fields if info.json_schema_extra is not_null)

    def dump(self) -> str:
        """The JSON body; a field declared with :func:`absent` is left out when it is None."""
        left_out = {name for name in self.absent_fields if getattr(self, name) is None}
        return self.model_dump_json(exclude=left_out or None)


def model_response(model: Answer, status: int = 200) -> web.Response:
    return web.Response(status=status, text=model.dump(), content_type=JSON)


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data, ensure_ascii=False, default=str), content_type=JSON
    )
