"""One error envelope for every failure, with X-Request-Id on every response."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from chalice.test import Client

from chalicelib.bootstrap import Container, build_container, use_container
from mmms_local import gateway
from tests.conftest import make_settings
from tests.support.http import ADMIN_HEADERS, Answer, call
from tests.support.protected_app import SECRET_IN_ERROR, build_app

ENVELOPE_KEYS = {"status", "error", "error_type", "message", "details", "request_id"}


def assert_envelope(answer: Answer, status: int, error_type: str) -> None:
    assert answer.status == status
    assert set(answer.json) == ENVELOPE_KEYS
    assert answer.json["status"] == status
    assert answer.json["error_type"] == error_type
    assert answer.json["request_id"] == answer.headers["x-request-id"]


def test_unknown_routes_are_404(client: Client) -> None:
    for path in ("/", "/nope", "/v1/nope", "/v1/api-key/a/b/c/d"):
        assert_envelope(call(client, "GET", path), 404, "not_found")


def test_wrong_method_is_405_with_allow(client: Client) -> None:
    answer = call(client, "PUT", "/v1/api-key", headers=ADMIN_HEADERS, body={})

    assert_envelope(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "POST, OPTIONS"


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
def test_a_method_no_route_declares_is_405_with_the_envelope(client: Client, method: str) -> None:
    answer = call(client, method, "/v1/suppressions")

    assert_envelope(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "GET, POST, OPTIONS"
    assert method in answer.json["message"]


def test_undeclared_methods_are_405_over_real_http_too(services: Container) -> None:
    import requests

    from tests.support.local_server import serving

    with serving() as url:
        answer = requests.request("TRACE", f"{url}/v1/health", timeout=5)

    assert answer.status_code == 405
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["error_type"] == "method_not_allowed"
    assert answer.headers["Allow"] == "GET, OPTIONS"


def test_wrong_content_type_is_415(client: Client) -> None:
    answer = call(
        client,
        "POST",
        "/v1/api-key",
        raw_body="name=k",
        headers={**ADMIN_HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert_envelope(answer, 415, "unsupported_media_type")


def test_body_not_json_is_422(client: Client) -> None:
    for raw in ("{not json", "", "[1, 2]"):
        answer = call(client, "POST", "/v1/api-key", raw_body=raw, headers=ADMIN_HEADERS)
        assert_envelope(answer, 422, "validation_error")


def test_oversize_body_is_413(clean_database: str) -> None:
    gateway.install()
    small = build_container(make_settings(clean_database, max_body_bytes=64))
    use_container(small)
    try:
        import app

        with Client(app.app) as client:
            answer = call(
                client,
                "POST",
                "/v1/api-key",
                headers=ADMIN_HEADERS,
                body={"name": "x" * 100, "origin_names": ["example.com"]},
            )
    finally:
        use_container(None)
        small.close()

    assert_envelope(answer, 413, "payload_too_large")


@pytest.fixture
def database_down() -> Iterator[Container]:
    gateway.install()
    down = build_container(
        make_settings("postgresql://postgres@127.0.0.1:1/postgres", db_connect_timeout_seconds=0.5)
    )
    use_container(down)
    yield down
    use_container(None)
    down.close()


def test_database_down_is_503_and_readiness_says_so(database_down: Container) -> None:
    import app

    with Client(app.app) as client:
        created = call(
            client,
            "POST",
            "/v1/api-key",
            headers=ADMIN_HEADERS,
            body={"name": "k", "origin_names": ["example.com"]},
        )
        ready = call(client, "GET", "/v1/health/ready")
        live = call(client, "GET", "/v1/health")

    assert_envelope(created, 503, "service_unavailable")
    assert_envelope(ready, 503, "service_unavailable")
    assert live.status == 200


def test_unexpected_error_is_500_without_leaking(services: Container) -> None:
    gateway.install()
    with Client(build_app()) as client:
        answer = call(client, "GET", "/v1/boom")

    assert_envelope(answer, 500, "internal_error")
    assert "hunter2" not in answer.text
    assert "SELECT" not in answer.text
    assert "Traceback" not in answer.text
    assert SECRET_IN_ERROR not in answer.text


def test_every_response_has_a_request_id_and_a_given_one_is_kept(client: Client) -> None:
    ok = call(client, "GET", "/v1/health")
    given = call(client, "GET", "/v1/health", headers={"X-Request-Id": "trace-123"})
    hostile = call(client, "GET", "/v1/health", headers={"X-Request-Id": "bad\u00e9 id"})

    assert re.fullmatch("[0-9a-f]{32}", ok.headers["x-request-id"])  # one of ours
    assert given.headers["x-request-id"] == "trace-123"
    # Not the hostile one, nor a cleaned-up copy of it: a new id of ours.
    assert re.fullmatch("[0-9a-f]{32}", hostile.headers["x-request-id"])
    assert hostile.headers["x-request-id"] != ok.headers["x-request-id"]
