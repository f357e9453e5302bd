"""POST/DELETE /v1/api-key and origins: the seed's shapes, against real PostgreSQL."""

from __future__ import annotations

import hashlib
import re

import psycopg
from chalice.test import Client

from chalicelib.bootstrap import Container
from tests.support.http import ADMIN_HEADERS, call, create_key

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_create_returns_the_seed_shape_field_for_field(client: Client) -> None:
    answer = call(
        client,
        "POST",
        "/v1/api-key",
        headers=ADMIN_HEADERS,
        body={
            "name": "My API Key",
            "origin_names": ["example.com", "app.example.com"],
            "expires_at": "2099-01-27T10:30:00Z",
        },
    )

    assert answer.status == 200
    assert set(answer.json) == {"status", "message", "data"}
    assert answer.json["status"] == 200
    assert answer.json["message"] == "API key created successfully"
    data = answer.json["data"]
    # The seed's fields, and SPEC 12's: the key's details (as GET shows them) plus the key.
    assert set(data) == {
        "key_id",
        "name",
        "api_key",
        "is_active",
        "created_at",
        "origins",
        "expires_at",
        "kind",
        "mode",
        "origin_names",
        "allowed_ips",
        "policy",
        "recipients_today",
    }
    assert re.fullmatch(r"[0-9a-f-]{36}", data["key_id"])
    assert data["name"] == "My API Key"
    assert re.fullmatch(r"ak_[A-Za-z0-9_-]{43,}", data["api_key"])
    assert data["is_active"] is True
    assert TIMESTAMP.match(data["created_at"])
    assert data["expires_at"] == "2099-01-27T10:30:00Z"
    assert [o["name"] for o in data["origins"]] == ["example.com", "app.example.com"]
    assert all(
        set(o) == {"name", "created_at"} and TIMESTAMP.match(o["created_at"])
        for o in data["origins"]
    )


def test_keys_are_stored_only_as_hashes(
    client: Client, services: Container, clean_database: str
) -> None:
    data = create_key(client, ["example.com"])

    with psycopg.connect(clean_database) as conn:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()
        dumped = repr(rows)
        key_hash = conn.execute("SELECT key_hash FROM api_keys").fetchone()
    assert data["api_key"] not in dumped
    assert data["api_key"][3:] not in dumped
    assert key_hash is not None
    assert bytes(key_hash[0]) == hashlib.sha256(data["api_key"].encode()).digest()


def test_two_keys_are_different(client: Client) -> None:
    assert create_key(client, ["a.com"])["api_key"] != create_key(client, ["a.com"])["api_key"]


def test_delete_by_key_returns_the_seed_shape_and_a_second_delete_is_404(client: Client) -> None:
    key = create_key(client, ["example.com"])["api_key"]

    first = call(client, "DELETE", f"/v1/api-key/{key}", headers=ADMIN_HEADERS)
    second = call(client, "DELETE", f"/v1/api-key/{key}", headers=ADMIN_HEADERS)

    assert first.status == 200
    assert first.json == {
        "status": 200,
        "message": "API key deleted successfully",
        "data": {"deleted": True, "api_key": key},
    }
    assert second.status == 404
    assert second.json["error_type"] == "not_found"


def test_delete_by_key_id(client: Client, clean_database: str) -> None:
    key_id = create_key(client, ["example.com"])["key_id"]

    answer = call(client, "DELETE", f"/v1/api-key/{key_id}", headers=ADMIN_HEADERS)

    assert answer.status == 200
    with psycopg.connect(clean_database) as conn:
        row = conn.execute("SELECT is_active, deleted_at FROM api_keys").fetchone()
    assert row is not None
    assert row[0] is False
    assert row[1] is not None


def test_delete_unknown_key_is_404(client: Client) -> None:
    for unknown in ("ak_doesnotexist", "123e4567-e89b-12d3-a456-426614174000", "garbage"):
        answer = call(client, "DELETE", f"/v1/api-key/{unknown}", headers=ADMIN_HEADERS)
        assert answer.status == 404, unknown
        assert answer.json["error_type"] == "not_found"


def test_add_origins_returns_the_seed_shape(client: Client) -> None:
    key = create_key(client, ["example.com"])["api_key"]

    answer = call(
        client,
        "POST",
        f"/v1/api-key/{key}/origins",
        headers=ADMIN_HEADERS,
        body={"origin_names": ["new.example.com", "api.example.com"]},
    )

    assert answer.status == 200
    assert answer.json["message"] == "Origins added to API key successfully"
    assert set(answer.json["data"]) == {"api_key", "added_origins"}
    assert answer.json["data"]["api_key"] == key
    assert [o["name"] for o in answer.json["data"]["added_origins"]] == [
        "new.example.com",
        "api.example.com",
    ]


def test_adding_an_origin_twice_is_a_no_op(client: Client, clean_database: str) -> None:
    key = create_key(client, ["example.com"])["api_key"]
    body = {"origin_names": ["New.Example.com", "new.example.com"]}

    first = call(client, "POST", f"/v1/api-key/{key}/origins", headers=ADMIN_HEADERS, body=body)
    second = call(client, "POST", f"/v1/api-key/{key}/origins", headers=ADMIN_HEADERS, body=body)

    assert first.status == second.status == 200
    assert first.json["data"]["added_origins"] == second.json["data"]["added_origins"]
    with psycopg.connect(clean_database) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM api_key_origins ORDER BY name")]
    assert names == ["example.com", "new.example.com"]


def test_origins_of_a_deleted_key_cannot_be_changed(client: Client) -> None:
    key = create_key(client, ["example.com"])["api_key"]
    call(client, "DELETE", f"/v1/api-key/{key}", headers=ADMIN_HEADERS)

    answer = call(
        client,
        "POST",
        f"/v1/api-key/{key}/origins",
        headers=ADMIN_HEADERS,
        body={"origin_names": ["x.com"]},
    )

    assert answer.status == 404


def test_invalid_bodies_are_422_with_pydantic_details(client: Client) -> None:
    cases = [
        ({"origin_names": ["example.com"]}, ["name"], "missing"),
        (
            {"name": "k", "origin_names": ["https://example.com/path"]},
            ["origin_names", 0],
            "value_error",
        ),
        ({"name": "k", "origin_names": ["exa mple.com"]}, ["origin_names", 0], "value_error"),
        (
            {"name": "k", "origin_names": [], "expires_at": "2001-01-01T00:00:00Z"},
            ["expires_at"],
            "value_error",
        ),
        ({"name": "k", "origin_names": [], "colour": "blue"}, ["colour"], "extra_forbidden"),
    ]
    for body, loc, error_type in cases:
        answer = call(client, "POST", "/v1/api-key", headers=ADMIN_HEADERS, body=body)
        assert answer.status == 422, body
        assert answer.json["error_type"] == "validation_error"
        assert answer.json["error"] == "Validation failed"
        assert answer.json["details"][0]["loc"] == loc, body
        assert answer.json["details"][0]["type"] == error_type, body
        assert set(answer.json["details"][0]) >= {"type", "loc", "msg", "input"}
