"""The deploy's migration step (``Custom::DatabaseMigrations``, chalicelib/migrate_resource.py):
applies the migrations on Create and Update, idempotently, answers FAILED (failing the
deploy) on any error, and leaves the database alone on Delete."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from chalicelib.migrate import migration_files
from chalicelib.migrate_resource import PHYSICAL_ID, handler
from tests.conftest import ADMIN_TOKEN
from tests.support.cfn_response import ResponseUrl, response_url
from tests.support.database import isolated_schema

UNREACHABLE = "postgresql://postgres@127.0.0.1:9/none?connect_timeout=1"


@pytest.fixture
def cloudformation() -> Iterator[ResponseUrl]:
    with response_url() as recorded:
        yield recorded


def event(kind: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:eu-central-1:123456789012:function:mmms-MigrateDatabase",
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:eu-central-1:123456789012:stack/mmms/1",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "DatabaseMigrations",
        "ResourceType": "Custom::DatabaseMigrations",
        "ResourceProperties": {"Migrations": "abc"},
        **extra,
    }


def configure(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("MAIL_QUEUE_URL", "http://127.0.0.1:9/000000000000/processing")
    monkeypatch.setenv("MAIL_RESULT_QUEUE_URL", "http://127.0.0.1:9/000000000000/result")
    monkeypatch.delenv("SECRET_NAME", raising=False)


def versions(conninfo: str) -> list[str]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    return [row[0] for row in rows]


def test_create_applies_every_migration_and_update_applies_none_again(
    postgres_url: str, cloudformation: ResponseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = [version for version, _ in migration_files()]
    with isolated_schema(postgres_url) as url:
        configure(monkeypatch, url)
        created = event("Create", cloudformation.url)
        handler(created, None)
        updated = event("Update", cloudformation.url, PhysicalResourceId=PHYSICAL_ID)
        handler(updated, None)
        assert versions(url) == every

    first, second = cloudformation.answers
    assert first["Status"] == "SUCCESS"
    assert first["Data"] == {"Applied": ",".join(every)}
    assert first["PhysicalResourceId"] == PHYSICAL_ID
    assert (first["RequestId"], first["StackId"], first["LogicalResourceId"]) == (
        created["RequestId"],
        created["StackId"],
        "DatabaseMigrations",
    )
    assert second["Status"] == "SUCCESS"
    assert second["Data"] == {"Applied": "none"}
    # A presigned S3 URL is signed without a content type; sending one would be refused.
    assert cloudformation.content_types == ["", ""]


def test_an_unreachable_database_fails_the_deploy(
    cloudformation: ResponseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, UNREACHABLE)
    answer = handler(event("Update", cloudformation.url, PhysicalResourceId=PHYSICAL_ID), None)
    assert cloudformation.answers == [answer]
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("OperationalError: ")


def test_a_failing_migration_fails_the_deploy_and_applies_nothing_half(
    postgres_url: str, cloudformation: ResponseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    with isolated_schema(postgres_url) as url:
        with psycopg.connect(url, autocommit=True) as conn:  # in the way of the first file
            conn.execute("CREATE TABLE api_keys (unrelated int)")
        configure(monkeypatch, url)
        answer = handler(event("Create", cloudformation.url), None)
        assert versions(url) == []
    assert answer["Status"] == "FAILED"
    assert "api_keys" in answer["Reason"]


def test_missing_settings_fail_the_deploy_with_their_name(
    cloudformation: ResponseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, UNREACHABLE)
    monkeypatch.delenv("DATABASE_URL")
    answer = handler(event("Create", cloudformation.url), None)
    assert answer["Status"] == "FAILED"
    assert "DATABASE_URL or SECRET_NAME" in answer["Reason"]


def test_delete_leaves_the_database_alone(
    cloudformation: ResponseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, UNREACHABLE)  # it would fail if it connected
    answer = handler(event("Delete", cloudformation.url, PhysicalResourceId=PHYSICAL_ID), None)
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == PHYSICAL_ID
