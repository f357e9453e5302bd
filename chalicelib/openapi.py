"""The OpenAPI 3.1 document, generated from the route table and the Pydantic models.

It is built from the route table handed in (``router.specs``), so this module never imports
the app: ``python -m mmms_local.openapi_document docs/openapi.json`` (``make openapi``) writes
it; a test keeps the committed copy in step with the routes.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.http.routing import Auth, RouteSpec
from chalicelib.models.common import Envelope, ErrorEnvelope
from chalicelib.models.paths import description_of, parameter_names, path_model

_REF = "#/components/schemas/{model}"
_ERROR_DESCRIPTIONS = {
    400: "Business rule broken or message rejected",
    401: "Unauthorized (for webhooks: a missing, bad or stale signature, or a replay)",
    403: "Forbidden: the key's policy refuses this request (details[].loc names the field);"
    " a server key used with an Origin or from an address it does not allow",
    404: "Not found",
    409: "Conflict: the resource is in a state that refuses the action",
    405: "Method not allowed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Rate limited",
    503: "Service unavailable: database or queue unreachable. Recipients already recorded are"
    " queued automatically when it is back; retry with the same email_id (never a new one)",
    500: "Internal error",
}
_ALWAYS = (405, 500)


def build_openapi(specs: list[RouteSpec]) -> dict[str, Any]:
    models = _models(specs)
    keyed, definitions = models_json_schema(
        [(m, "serialization") for m in models], ref_template=_REF
    )
    schemas = definitions.get("$defs", {})
    refs = {model: keyed[(model, "serialization")]["$ref"] for model in models}

    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MMMS — Mail Micro Service",
            "version": "1.0.0",
            "description": "Transactional and bulk email through one API. No text in a"
            " request (body, path or query) may contain NUL (U+0000), which PostgreSQL cannot"
            " store: such a request is refused with 422.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "AdminToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def _models(specs: list[RouteSpec]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [ErrorEnvelope]
    for spec in specs:
        if spec.request_model is not None:
            found.append(spec.request_model)
        for model in (spec.response_model, *(m for _, m in spec.extra_responses.values())):
            if model is not None:
                found.append(_envelope(model))
    return list(dict.fromkeys(found))


def _operation(spec: RouteSpec, refs: dict[type[BaseModel], str]) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": spec.name, "summary": spec.summary}
    parameters = _path_parameters(spec.path)
    if spec.query_model is not None:
        parameters += _query_parameters(spec.query_model)
    security = _security(spec.auth)
    if security:
        operation["security"] = security
    if spec.auth in (Auth.API_KEY, Auth.ADMIN_OR_API_KEY):
        parameters.append(_ORIGIN_HEADER)
    if parameters:
        operation["parameters"] = parameters
    if spec.request_model is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": refs[spec.request_model]}}},
        }
    responses: dict[str, Any] = {
        str(spec.success_status): _success(spec.summary, spec.response_model, refs)
    }
    for status, (description, model) in spec.extra_responses.items():
        responses[str(status)] = _success(description, model, refs)
    for status, links in spec.links.items():
        responses[str(status)]["links"] = {
            name: {"operationId": operation, "parameters": parameters}
            for name, (operation, parameters) in links.items()
        }
    error_ref = {"application/json": {"schema": {"$ref": refs[ErrorEnvelope]}}}
    for status in sorted(error_statuses(spec)):
        responses[str(status)] = {"description": _ERROR_DESCRIPTIONS[status], "content": error_ref}
        if status == 429:
            responses["429"]["headers"] = {
                "Retry-After": {
                    "description": "Seconds until the limit's window ends (the minute, or"
                    " the UTC day for the daily recipient quota)",
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
    operation["responses"] = responses
    return operation


_ORIGIN_HEADER = {
    "name": "Origin",
    "in": "header",
    "required": False,
    "description": "Browser keys: required, one of the key's origins. Server keys: never (a"
    " request with an Origin is refused with 403)",
    "schema": {"type": "string"},
}


def _security(auth: Auth) -> list[dict[str, list[str]]]:
    schemes: dict[Auth, list[dict[str, list[str]]]] = {
        Auth.PUBLIC: [],
        Auth.API_KEY: [{"ApiKey": []}],
        Auth.ADMIN: [{"AdminToken": []}],
        Auth.ADMIN_OR_API_KEY: [{"AdminToken": []}, {"ApiKey": []}],
    }
    return schemes[auth]


def error_statuses(spec: RouteSpec) -> set[int]:
    """Every error status the route can answer: its own, and those its auth and inputs imply."""
    statuses = {*spec.error_statuses, *_ALWAYS}
    if spec.auth is not Auth.PUBLIC:
        statuses.add(401)
    if spec.auth in (Auth.API_KEY, Auth.ADMIN_OR_API_KEY):
        statuses |= {403, 429}
    if spec.request_model is not None or spec.query_model is not None or parameter_names(spec.path):
        statuses.add(422)
    if spec.request_model is not None:
        statuses |= {413, 415}
    return statuses


def _path_parameters(path: str) -> list[dict[str, Any]]:
    """The route's path parameters with the schema the router validates them against (the
    decoded value: the URL carries it percent-encoded)."""
    schema = path_model(path).model_json_schema()
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": description_of(name),
            "schema": _without_title(schema["properties"][name]),
        }
        for name in parameter_names(path)
    ]


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One query parameter per field of ``model``, its schema inlined.

    An optional field's ``None`` means "absent": a query string has no null, so the
    parameter's schema is the value's alone (``anyOf: [..., {type: null}]`` would let a
    client think ``?cursor=null`` or an empty value is fine)."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        value = _inline(prop, definitions)
        branches = value.get("anyOf", [])
        if {"type": "null"} in branches:
            (value_schema,) = [b for b in branches if b != {"type": "null"}]
            extras = {k: v for k, v in value.items() if k not in {"anyOf", "default"}}
            value = {**value_schema, **extras}
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", []),
                "schema": _without_title(value),
            }
        )
    return parameters


def _without_title(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "title"}


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def _envelope(model: type[BaseModel]) -> type[BaseModel]:
    """``Envelope[model]``, parametrised at run time (pydantic caches the class)."""
    return cast(type[BaseModel], Envelope.__class_getitem__(model))


def _success(
    description: str, model: type[BaseModel] | None, refs: dict[type[BaseModel], str]
) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if model is not None:
        ref = refs[_envelope(model)]
        answer["content"] = {"application/json": {"schema": {"$ref": ref}}}
    return answer
