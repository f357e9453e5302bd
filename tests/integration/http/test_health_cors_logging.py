"""Health, readiness, CORS and the access log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from chalice.test import Client

from chalicelib.bootstrap import build_container, use_container
from chalicelib.logs import JsonFormatter
from mmms_local import gateway
from tests.conftest import UI_ORIGIN, make_settings
from tests.support.http import ADMIN_HEADERS, call, create_key
from tests.support.smtp_server import unused_port


def test_health_is_the_seeds_ok(client: Client) -> None:
    answer = call(client, "GET", "/v1/health")

    assert answer.status == 200
    assert answer.text == '"OK"'
    assert answer.headers["content-type"] == "application/json"


def test_readiness_reports_the_database(client: Client) -> None:
    answer = call(client, "GET", "/v1/health/ready")

    assert answer.status == 200
    assert answer.json["data"] == {"database": "ok"}


def test_preflight_from_the_configured_ui_origin(client: Client) -> None:
    answer = call(
        client,
        "OPTIONS",
        "/v1/api-key",
        headers={"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST"},
    )

    assert answer.status == 204
    assert answer.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "X-Api-Key" in answer.headers["access-control-allow-headers"]
    assert "X-Captcha-Token" in answer.headers["access-control-allow-headers"]
    assert "Origin" in answer.headers["vary"]


def test_preflight_from_an_origin_some_key_allows(client: Client) -> None:
    create_key(client, ["*.shop.example"])

    allowed = call(client, "OPTIONS", "/v1/health", headers={"Origin": "https://eu.shop.example"})
    refused = call(client, "OPTIONS", "/v1/health", headers={"Origin": "https://evil.example"})

    assert allowed.headers["access-control-allow-origin"] == "https://eu.shop.example"
    assert "access-control-allow-origin" not in refused.headers


def test_responses_echo_only_allowed_origins(client: Client) -> None:
    allowed = call(client, "GET", "/v1/health", headers={"Origin": UI_ORIGIN})
    refused = call(client, "GET", "/v1/health", headers={"Origin": "https://evil.example"})

    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "access-control-allow-origin" not in refused.headers


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("mmms")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


def test_one_json_access_line_per_request_without_secrets(
    client: Client, log_lines: io.StringIO
) -> None:
    key = create_key(client, ["example.com"])["api_key"]
    call(client, "DELETE", f"/v1/api-key/{key}", headers={**ADMIN_HEADERS, "X-Request-Id": "r-1"})

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    access = [line for line in lines if line.get("event") == "request"]
    assert len(access) == 2
    assert access[1]["request_id"] == "r-1"
    assert access[1]["route"] == "/v1/api-key/{api_key}"
    assert access[1]["status"] == 200
    assert access[1]["duration_ms"] >= 0
    assert "key_id" in access[1]
    text = log_lines.getvalue()
    assert key not in text
    assert ADMIN_HEADERS["Authorization"].split()[1] not in text


def test_readiness_with_the_database_down_is_503_service_unavailable() -> None:
    database_down = f"postgresql://postgres@127.0.0.1:{unused_port()}/postgres"
    down = build_container(make_settings(database_down, db_connect_timeout_seconds=0.5))
    use_container(down)
    gateway.install()
    import app

    try:
        with Client(app.app) as client:
            ready = call(client, "GET", "/v1/health/ready")
            live = call(client, "GET", "/v1/health")
    finally:
        use_container(None)
        down.close()

    assert ready.status == 503
    assert ready.json["error_type"] == "service_unavailable"
    assert ready.json["message"] == "The database is unreachable; try again shortly"
    assert live.status == 200


def test_liveness_needs_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "SECRET_NAME", "ADMIN_TOKEN", "MAIL_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    # Secrets Manager where nothing listens: unreachable whatever credentials the machine has.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{unused_port()}")
    # The stages name queues, not URLs (the template passes those): give readiness some.
    monkeypatch.setenv("MAIL_QUEUE_URL", f"http://127.0.0.1:{unused_port()}/0/q")
    monkeypatch.setenv("MAIL_RESULT_QUEUE_URL", f"http://127.0.0.1:{unused_port()}/0/r")
    use_container(None)
    gateway.install()
    import app

    with Client(app.app) as bare:
        live = call(bare, "GET", "/v1/health")
        ready = call(bare, "GET", "/v1/health/ready")

    # Chalice's test client applies the dev stage's environment (SECRET_NAME, unreachable
    # here): readiness reports that, liveness does not depend on it.
    assert live.status == 200
    assert ready.status == 503
    assert ready.json["error_type"] == "service_unavailable"
    assert ready.json["message"] == "Secrets Manager is unreachable"
