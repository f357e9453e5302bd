"""Settings: each test starts from a complete, valid environment and breaks one thing."""

from __future__ import annotations

import pytest

from chalicelib.config import load_settings
from chalicelib.errors import ConfigurationError

VALID = {
    "DATABASE_URL": "postgresql://localhost/x",
    "ADMIN_TOKEN": "x" * 20,
    "MAIL_QUEUE_URL": "http://q/processing",
    "MAIL_RESULT_QUEUE_URL": "http://q/result",
}
ALSO_READ = (
    "SECRET_NAME",
    "ADMIN_SECRET_NAME",
    "CORS_ALLOW_ORIGINS",
    "MAX_BODY_BYTES",
    "MAIL_QUEUE_MAX_RECEIVES",
    "RETRY_MAX_DELAY_SECONDS",
    "ABANDON_AFTER_SECONDS",
)


@pytest.fixture(autouse=True)
def valid_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALSO_READ:
        monkeypatch.delenv(name, raising=False)
    for name, value in VALID.items():
        monkeypatch.setenv(name, value)


def test_the_valid_environment_loads() -> None:
    assert load_settings().mail_queue_url == "http://q/processing"


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("DATABASE_URL", "DATABASE_URL or SECRET_NAME"),
        ("ADMIN_TOKEN", "ADMIN_TOKEN or ADMIN_SECRET_NAME"),
        ("MAIL_QUEUE_URL", "MAIL_QUEUE_URL"),
        ("MAIL_RESULT_QUEUE_URL", "MAIL_RESULT_QUEUE_URL"),
    ],
)
def test_a_missing_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, missing: str, named: str
) -> None:
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigurationError, match=named):
        load_settings()


def test_an_invalid_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "lots")
    with pytest.raises(ConfigurationError, match="MAX_BODY_BYTES"):
        load_settings()


def test_abandoning_before_retries_end_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAIL_QUEUE_MAX_RECEIVES", "10")
    monkeypatch.setenv("RETRY_MAX_DELAY_SECONDS", "3600")
    with pytest.raises(ConfigurationError, match="ABANDON_AFTER_SECONDS"):
        load_settings()


def test_cors_origins_are_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "http://localhost:4321, https://app.example.com")
    assert load_settings().cors_allow_origins == [
        "http://localhost:4321",
        "https://app.example.com",
    ]
