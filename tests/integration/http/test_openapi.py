"""The OpenAPI document covers every route and the committed copy is current."""

from __future__ import annotations

import json
from pathlib import Path

from chalice.test import Client

from chalicelib.openapi import build_openapi
from tests.support.http import call

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
FALLBACKS = ("not_allowed_", "preflight_", "not_found_")


def test_every_route_is_documented_and_nothing_else(client: Client) -> None:
    import app

    document = build_openapi(app.router.specs)
    registered = {
        (path, method.lower())
        for path, methods in app.app.routes.items()
        for method, entry in methods.items()
        if not entry.view_name.startswith(FALLBACKS)
    }
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}

    assert registered == documented
    assert document["openapi"] == "3.1.0"


def test_served_document_is_the_committed_one(client: Client) -> None:
    answer = call(client, "GET", "/v1/openapi.json")

    assert answer.status == 200
    assert answer.json == json.loads(DOC.read_text(encoding="utf-8")), (
        "docs/openapi.json is stale: run `make openapi`"
    )


def test_request_schemas_come_from_the_models(client: Client) -> None:
    document = json.loads(DOC.read_text(encoding="utf-8"))
    create = document["paths"]["/v1/api-key"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]

    assert set(schema["properties"]) == {"name", "origin_names", "expires_at", "mode"}
    assert create["security"] == [{"AdminToken": []}]


def test_the_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    validate(json.loads(DOC.read_text(encoding="utf-8")), cls=OpenAPIV31SpecValidator)
