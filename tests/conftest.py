"""Fixtures shared by every test layer: moto's server, a real PostgreSQL, the app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.bootstrap import Container, build_container, use_container
from chalicelib.config import Settings
from chalicelib.migrate import apply_migrations
from tests.support.database import isolated_schema, postgres_server, truncate_all
from tests.support.fake_providers import FakeProvider
from tests.support.moto_server import MotoServer, running_moto_server

ADMIN_TOKEN = "test-admin-token-0123456789"
UI_ORIGIN = "http://localhost:4321"


@pytest.fixture(scope="session")
def moto_session() -> Iterator[MotoServer]:
    with running_moto_server() as server:
        yield server


@pytest.fixture
def moto(moto_session: MotoServer) -> MotoServer:
    """moto's server, with every backend reset before the test."""
    moto_session.reset()
    return moto_session


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_url: str) -> Iterator[str]:
    """A migrated schema of this test run's own."""
    with isolated_schema(postgres_url) as url:
        apply_migrations(url)
        yield url


@pytest.fixture
def clean_database(database_url: str) -> str:
    truncate_all(database_url)
    return database_url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "cors_allow_origins": [UI_ORIGIN],
        "db_connect_timeout_seconds": 2.0,
        # Unreachable on purpose: tests that use queues pass moto's.
        "mail_queue_url": "http://127.0.0.1:9/000000000000/unused-processing",
        "mail_result_queue_url": "http://127.0.0.1:9/000000000000/unused-result",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def services(clean_database: str) -> Iterator[Container]:
    """The app's container on the test schema, installed as the process-wide one."""
    built = build_container(make_settings(clean_database), sender=FakeProvider("fake"))
    use_container(built)
    try:
        yield built
    finally:
        use_container(None)
        built.close()
