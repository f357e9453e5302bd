"""The OpenAPI 3.1 document, generated from the route table and the Pydantic models.

``python -m chalicelib.openapi docs/openapi.json`` writes it; a test keeps the committed copy
in step with the routes.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.http.routing import Auth, RouteSpec
from chalicelib.models.common import Envelope, ErrorEnvelope

_REF = "#/components/schemas/{model}"
_ERROR_DESCRIPTIONS = {
    400: "Business rule broken or message rejected",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Rate limited",
    503: "Service unavailable",
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
            "description": "Transactional and bulk email through one API.",
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
        if spec.response_model is not None:
            found.append(Envelope[spec.response_model])  # type: ignore[name-defined]
    return list(dict.fromkeys(found))


def _operation(spec: RouteSpec, refs: dict[type[BaseModel], str]) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": spec.name, "summary": spec.summary}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", spec.path)
    ]
    if spec.auth is Auth.API_KEY:
        operation["security"] = [{"ApiKey": []}]
        parameters.append(
            {"name": "Origin", "in": "header", "required": True, "schema": {"type": "string"}}
        )
    elif spec.auth is Auth.ADMIN:
        operation["security"] = [{"AdminToken": []}]
    if parameters:
        operation["parameters"] = parameters
    if spec.request_model is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": refs[spec.request_model]}}},
        }
    success: dict[str, Any] = {"description": spec.summary}
    if spec.response_model is not None:
        ref = refs[Envelope[spec.response_model]]  # type: ignore[name-defined]
        success["content"] = {"application/json": {"schema": {"$ref": ref}}}
    responses: dict[str, Any] = {str(spec.success_status): success}
    for status, description in spec.extra_responses.items():
        responses[str(status)] = {"description": description}
    error_ref = {"application/json": {"schema": {"$ref": refs[ErrorEnvelope]}}}
    for status in sorted({*spec.error_statuses, *_ALWAYS}):
        responses[str(status)] = {"description": _ERROR_DESCRIPTIONS[status], "content": error_ref}
    operation["responses"] = responses
    return operation


def main(argv: list[str]) -> None:
    import app

    document = json.dumps(build_openapi(app.router.specs), indent=2, ensure_ascii=False) + "\n"
    if len(argv) > 1:
        with open(argv[1], "w", encoding="utf-8") as handle:
            handle.write(document)
    else:
        sys.stdout.write(document)


if __name__ == "__main__":
    main(sys.argv)
