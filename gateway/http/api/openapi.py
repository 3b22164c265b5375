"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of every route the running app serves.

Generated from the endpoints' declarations (gateway/http/operations.py): each route's operation,
and the JSON schemas of the pydantic models that validate its query and body and build its
answers, all in ``components.schemas``. A route without a declaration is listed as not described
(a test keeps that from happening). The document is built once per application (its routes are
frozen once it runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode

from ..operations import JSON, PUBLIC, SIGNED, Operation, Reply, content
from ..operators.web import SESSION_COOKIE
from ..responses import not_null
from ..signing import CLIENT_HEADER, SIGNATURE_HEADER
from .errors import ERRORS, SIGNATURE_FORMAT, SIGNED_ERRORS

REF = "#/components/schemas/{model}"
# components named for the API's readers rather than after the classes
COMPONENT_NAMES = {"Event": "CaseEvent", "ProblemDetails": "Problem"}

Key = tuple[str, str]  # (method in lower case, path)


class _Schemas(GenerateJsonSchema):
    """Component names of COMPONENT_NAMES; no title on every field (the property names say it)."""

    def normalize_name(self, name: str) -> str:
        return COMPONENT_NAMES.get(name, super().normalize_name(name))

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def routes_of(app: web.Application) -> set[Key]:
    """(method, path) of every route the app serves, mounted sub-applications included (their
    resources carry the full path); HEAD left out (aiohttp adds it to every GET)."""
    out = set()
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" in info:  # a mounted sub-application
            out |= routes_of(info["app"])
            continue
        path = info.get("path") or info.get("formatter")
        if not path:
            continue
        for route in resource:
            if route.method not in ("HEAD", "*"):
                out.add((route.method.lower(), path))
    return out


def _models(op: Operation) -> Iterable[tuple[type[BaseModel], JsonSchemaMode]]:
    if op.query is not None:
        yield op.query, "validation"
    if isinstance(op.body, type):
        yield op.body, "validation"
    for reply in _replies(op).values():
        if reply.model is not None:
            yield reply.model, "serialization"


def _replies(op: Operation) -> dict[str, Reply]:
    """The operation's answers; a signed one's include what authentication answers."""
    if op.security != SIGNED:
        return dict(op.responses)
    return {**{code: ERRORS[code] for code in SIGNED_ERRORS}, **op.responses}


def _component(ref: Mapping[str, str]) -> str:
    return ref["$ref"].rsplit("/", 1)[-1]


def _query_parameters(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A query model's properties as query parameters (never null; a list: comma-separated values)."""
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        if prop.get("default", 0) is None:
            not_null(prop)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            parameter["description"] = prop.pop("description")
        if prop.get("type") == "array":
            parameter |= {"style": "form", "explode": False}
        parameter["schema"] = prop
        parameters.append(parameter)
    return parameters


class Document:
    """The OpenAPI document of an application, from the declared operations."""

    def __init__(self, operations: Iterable[Operation]):
        self.operations = {op.key: op for op in operations}
        self._cached: str | None = None

    @property
    def described(self) -> set[Key]:
        return set(self.operations)

    def build(self, app: web.Application) -> dict[str, Any]:
        routes = sorted(routes_of(app), key=lambda key: (key[1], key[0]))
        declared = [self.operations[key] for key in routes if key in self.operations]
        inputs = list(dict.fromkeys(model for op in declared for model in _models(op)))
        refs, defs = _Schemas(ref_template=REF, union_format="primitive_type_array").generate_definitions(
            [(model, mode, model.__pydantic_core_schema__) for model, mode in inputs]
        )
        schemas: dict[str, Any] = dict(defs)
        paths: dict[str, dict[str, Any]] = {}
        for method, path in routes:
            if (method, path) in self.operations:
                operation = self._operation(self.operations[method, path], refs, schemas)
            else:
                operation = {
                    "summary": "(not described)",
                    "responses": {"default": {"description": "see source"}},
                }
            paths.setdefault(path, {})[method] = operation
        for op in declared:  # a query model is its parameters, not a component
            if op.query is not None:
                schemas.pop(_component(refs[op.query, "validation"]), None)
        return _document(paths, schemas)

    def _operation(self, op: Operation, refs: Mapping, schemas: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
        if op.description:
            out["description"] = op.description
        out["security"] = [dict(s) for s in op.security]
        parameters = [
            {"name": p.name, "in": "path", "required": True, "schema": dict(p.schema)}
            | ({"description": p.description} if p.description else {})
            for p in op.path_parameters
        ]
        if op.query is not None:
            parameters += _query_parameters(schemas[_component(refs[op.query, "validation"])])
        if parameters:
            out["parameters"] = parameters
        if op.body is not None:
            schema = refs[op.body, "validation"] if isinstance(op.body, type) else dict(op.body)
            out["requestBody"] = {"required": op.body_required, "content": {JSON: {"schema": schema}}}
        responses: dict[str, Any] = {}
        for code, reply in sorted(_replies(op).items()):
            response: dict[str, Any] = {"description": reply.description}
            if reply.headers:
                response["headers"] = {
                    h.name: {"description": h.description, "schema": dict(h.schema)} for h in reply.headers
                }
            if reply.media_type is not None:
                media: dict[str, Any] = {}
                if reply.model is not None:
                    media["schema"] = refs[reply.model, "serialization"]
                response["content"] = {reply.media_type: media}
            responses[code] = response
        out["responses"] = responses
        return out

    def render(self, app: web.Application) -> str:
        if self._cached is None or not app.frozen:
            self._cached = json.dumps(self.build(app), ensure_ascii=False)
        return self._cached


def _document(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "smsgw",
            "version": "1",
            "description": (
                f"SMS citizen-notification gateway. Requests are signed: `{CLIENT_HEADER}: <id>` and "
                f"`{SIGNATURE_HEADER}`: {SIGNATURE_FORMAT} A GET or an empty POST signs the empty body. "
                "Errors are application/problem+json."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "operator": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "an operator's session, from POST /dashboard/login",
                },
                "client": {
                    "type": "apiKey",
                    "in": "header",
                    "name": CLIENT_HEADER,
                    "description": "client id",
                },
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": SIGNATURE_HEADER,
                    "description": SIGNATURE_FORMAT,
                },
            },
        },
    }


DOCUMENT = web.AppKey("openapi", Document)


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(text=request.app[DOCUMENT].render(request.app), content_type=JSON)


OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/openapi.json",
        get_openapi,
        "getOpenApi",
        "This document",
        {"200": content(JSON, "OpenAPI 3.1")},
        security=PUBLIC,
    ),
)
