"""Every 401 path of API-key and admin authentication, against real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from chalice.test import Client

from chalicelib.bootstrap import Container
from mmms_local import gateway
from tests.support.http import ADMIN_HEADERS, Answer, call, create_key
from tests.support.protected_app import build_app

SAME_ANSWER = "Unauthorized - Invalid API key or origin not allowed"


@pytest.fixture
def protected(services: Container) -> Iterator[Client]:
    gateway.install()
    with Client(build_app()) as test_client:
        yield test_client


def whoami(client: Client, key: str | None, origin: str | None) -> Answer:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    if origin is not None:
        headers["Origin"] = origin
    return call(client, "POST", "/v1/whoami", body={}, headers=headers)


def assert_unauthorized(answer: Answer, message: str | None = None) -> None:
    assert answer.status == 401
    assert answer.json["error_type"] == "unauthorized"
    assert answer.json["message"].startswith("Unauthorized - ")
    if message is not None:
        assert answer.json["message"] == message


def test_valid_key_and_origin_reach_the_handler_with_the_caller(
    client: Client, protected: Client
) -> None:
    key = create_key(client, ["app.example.com"])

    answer = whoami(protected, key["api_key"], "https://app.example.com")

    assert answer.status == 200
    assert answer.json["data"] == {"key_id": key["key_id"]}


@pytest.mark.parametrize(
    ("allowed", "origin", "ok"),
    [
        ("example.com", "https://example.com", True),
        ("example.com", "http://example.com:8080", True),
        ("example.com", "https://evil-example.com", False),
        ("localhost:4321", "http://localhost:4321", True),
        ("localhost:4321", "http://localhost:4322", False),
        ("example.com:443", "https://example.com", True),
        ("*.example.com", "https://a.b.example.com", True),
        ("*.example.com", "https://example.com", False),
        ("*.example.com", "https://example.com.evil.org", False),
    ],
)
def test_origin_rules(
    client: Client, protected: Client, allowed: str, origin: str, ok: bool
) -> None:
    key = create_key(client, [allowed])["api_key"]

    answer = whoami(protected, key, origin)

    if ok:
        assert answer.status == 200
    else:
        assert_unauthorized(answer, SAME_ANSWER)


def test_missing_key(protected: Client) -> None:
    assert_unauthorized(whoami(protected, None, "https://example.com"))


def test_missing_origin(client: Client, protected: Client) -> None:
    key = create_key(client, ["example.com"])["api_key"]
    assert_unauthorized(whoami(protected, key, None))
    assert_unauthorized(whoami(protected, key, "null"))


def test_unknown_key(protected: Client) -> None:
    assert_unauthorized(whoami(protected, "ak_" + "x" * 43, "https://example.com"), SAME_ANSWER)


def test_deleted_key(client: Client, protected: Client) -> None:
    key = create_key(client, ["example.com"])["api_key"]
    call(client, "DELETE", f"/v1/api-key/{key}", headers=ADMIN_HEADERS)

    assert_unauthorized(whoami(protected, key, "https://example.com"), SAME_ANSWER)


def test_inactive_key(client: Client, protected: Client, clean_database: str) -> None:
    key = create_key(client, ["example.com"])["api_key"]
    with psycopg.connect(clean_database) as conn:
        conn.execute("UPDATE api_keys SET is_active = false")

    assert_unauthorized(whoami(protected, key, "https://example.com"), SAME_ANSWER)


def test_expired_key(client: Client, protected: Client, clean_database: str) -> None:
    key = create_key(client, ["example.com"], expires_at="2099-01-01T00:00:00Z")["api_key"]
    assert whoami(protected, key, "https://example.com").status == 200
    with psycopg.connect(clean_database) as conn:
        conn.execute(
            "UPDATE api_keys SET expires_at = %s", (datetime.now(UTC) - timedelta(seconds=1),)
        )

    assert_unauthorized(whoami(protected, key, "https://example.com"), SAME_ANSWER)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong-token-0123456789",
        "Basic dGVzdA==",
        "test-admin-token-0123456789",
    ],
)
def test_admin_endpoints_need_the_admin_token(client: Client, authorization: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = {"name": "k", "origin_names": ["example.com"]}

    for method, path, payload in [
        ("POST", "/v1/api-key", body),
        ("DELETE", "/v1/api-key/ak_whatever", None),
        ("POST", "/v1/api-key/ak_whatever/origins", {"origin_names": ["x.com"]}),
    ]:
        assert_unauthorized(call(client, method, path, body=payload, headers=headers))


def test_a_401_is_readable_by_a_front_end_whose_origin_some_key_allows(
    client: Client, protected: Client
) -> None:
    create_key(client, ["app.example.com"])

    known = whoami(protected, "ak_" + "x" * 43, "https://app.example.com")
    unknown = whoami(protected, "ak_" + "x" * 43, "https://evil.example")

    assert known.status == unknown.status == 401
    assert known.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in unknown.headers
