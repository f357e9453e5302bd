from __future__ import annotations

import pytest

from chalicelib.config import load_settings
from chalicelib.errors import ConfigurationError


@pytest.fixture(autouse=True)
def empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "SECRET_NAME",
        "ADMIN_TOKEN",
        "ADMIN_SECRET_NAME",
        "CORS_ALLOW_ORIGINS",
        "MAX_BODY_BYTES",
        "MAIL_QUEUE_URL",
        "MAIL_RESULT_QUEUE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def test_missing_database_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "x" * 20)
    with pytest.raises(ConfigurationError, match="DATABASE_URL or SECRET_NAME"):
        load_settings()


def test_missing_admin_token_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://localhost/x")
    with pytest.raises(ConfigurationError, match="ADMIN_TOKEN or ADMIN_SECRET_NAME"):
        load_settings()


def test_invalid_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://localhost/x")
    monkeypatch.setenv("ADMIN_TOKEN", "x" * 20)
    monkeypatch.setenv("MAX_BODY_BYTES", "lots")
    with pytest.raises(ConfigurationError, match="MAX_BODY_BYTES"):
        load_settings()


def test_missing_queue_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://localhost/x")
    monkeypatch.setenv("ADMIN_TOKEN", "x" * 20)
    monkeypatch.setenv("MAIL_RESULT_QUEUE_URL", "http://q/result")
    with pytest.raises(ConfigurationError, match="MAIL_QUEUE_URL"):
        load_settings()


def test_cors_origins_are_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAIL_QUEUE_URL", "http://q/processing")
    monkeypatch.setenv("MAIL_RESULT_QUEUE_URL", "http://q/result")
    monkeypatch.setenv("DATABASE_URL", "postgresql://localhost/x")
    monkeypatch.setenv("ADMIN_TOKEN", "x" * 20)
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "http://localhost:4321, https://app.example.com")
    assert load_settings().cors_allow_origins == [
        "http://localhost:4321",
        "https://app.example.com",
    ]
