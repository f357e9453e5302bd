"""The OpenAPI document is what the app does, and the committed copy is current.

The document is built from the same route table the app registers, so comparing the two
proves nothing; these tests hold the committed document to the app's answers instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chalice.test import Client

from chalicelib.bootstrap import Container
from chalicelib.http.routing import ALL_METHODS
from tests.support.http import ADMIN_HEADERS, call, create_key

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
FALLBACKS = ("not_allowed_", "preflight_", "not_found_")


# A value for each path parameter that passes its validation.
SAMPLES = {
    "api_key": "ak_sample",
    "email_id": "email-1",
    "email_recipient_id": "r-1",
    "address": "someone@example.org",
    "template_id": "tpl_0000000000000000",
    "campaign_id": "cmp_sample",
}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m[1]], path)


def committed_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOC.read_text(encoding="utf-8"))
    return document


def test_chalices_route_table_and_the_document_name_the_same_operations(client: Client) -> None:
    import app

    registered = {
        (path, method.lower())
        for path, methods in app.app.routes.items()
        for method, entry in methods.items()
        if not entry.view_name.startswith(FALLBACKS)
    }
    document = committed_document()
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}

    assert registered == documented
    assert document["openapi"] == "3.1.0"


def test_every_documented_operation_answers_with_a_documented_status(client: Client) -> None:
    """Called without credentials, every operation answers one of its documented statuses,
    never the 404 of an unknown route or a 405."""
    for path, operations in committed_document()["paths"].items():
        for method, operation in operations.items():
            answer = call(client, method.upper(), concrete(path))

            assert str(answer.status) in operation["responses"], (method, path, answer.status)
            assert answer.status != 405, (method, path)
            if answer.status == 404:
                assert not answer.json["message"].startswith("No route"), (method, path)


def test_every_other_method_on_a_documented_path_is_405_naming_the_documented_ones(
    client: Client,
) -> None:
    for path, operations in committed_document()["paths"].items():
        documented = {method.upper() for method in operations}
        for method in sorted(set(ALL_METHODS) - documented):
            answer = call(client, method, concrete(path))

            assert answer.status == 405, (method, path, answer.status)
            allowed = {m.strip() for m in answer.headers["allow"].split(",")}
            assert allowed == documented | {"OPTIONS"}, (method, path)


def test_a_path_the_document_does_not_have_is_404(client: Client) -> None:
    for path in ("/v1/nothing", "/v1/mail/a/b/c/d", "/v2/health", "/"):
        answer = call(client, "GET", path)

        assert answer.status == 404, path
        assert answer.json["error_type"] == "not_found"


def test_documented_client_errors_are_reachable(client: Client, services: Container) -> None:
    """Each operation's documented 401 (no credentials), 413 (body over MAX_BODY_BYTES), 415
    (not JSON) and 422 (JSON that is not the body) answers, and only where documented."""
    too_large = "x" * (services.settings.max_body_bytes + 1)
    key = create_key(client, ["app.example.com"])["api_key"]
    credentials = {
        "AdminToken": {"Authorization": ADMIN_HEADERS["Authorization"]},
        "ApiKey": {"x-api-key": key, "Origin": "https://app.example.com"},
    }
    for path, operations in committed_document()["paths"].items():
        for method, operation in operations.items():
            statuses = operation["responses"]
            url, verb = concrete(path), method.upper()
            public = operation.get("security") is None
            authorised = {
                name: value
                for scheme in operation.get("security", [])
                for scheme_name in scheme
                for name, value in credentials[scheme_name].items()
            }
            if not public:
                assert call(client, verb, url).status == 401, (method, path)
                assert "401" in statuses
            if "requestBody" not in operation:
                assert "413" not in statuses, (method, path)
                assert "415" not in statuses, (method, path)
                continue
            json_type = {**authorised, "Content-Type": "application/json"}
            answers = {
                413: call(client, verb, url, raw_body=too_large, headers=json_type),
                415: call(
                    client,
                    verb,
                    url,
                    raw_body="a=b",
                    headers={**authorised, "Content-Type": "text/plain"},
                ),
                422: call(client, verb, url, raw_body="[1, 2]", headers=json_type),
            }
            for expected, answer in answers.items():
                if public and expected == 422:
                    continue  # unconfigured webhooks answer 404 before reading the body
                assert answer.status == expected, (method, path, expected, answer.json)
                assert str(expected) in statuses, (method, path, expected)


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

    assert set(schema["properties"]) == {
        "name",
        "origin_names",
        "expires_at",
        "mode",
        "kind",
        "allowed_ips",
        "policy",
    }
    assert create["security"] == [{"AdminToken": []}]


def test_the_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    validate(json.loads(DOC.read_text(encoding="utf-8")), cls=OpenAPIV31SpecValidator)
