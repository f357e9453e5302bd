"""ProviderSettings validation and build_provider_chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.errors import ConfigurationError
from chalicelib.providers.capture import CaptureProvider
from chalicelib.providers.factory import (
    ProviderSettings,
    build_provider_chain,
    load_provider_settings,
)
from chalicelib.providers.mailgun import MailgunProvider
from chalicelib.providers.sendgrid import SendGridProvider
from chalicelib.providers.ses import SesProvider
from chalicelib.providers.smtp import SmtpProvider

SETTING_NAMES = [
    "MAIL_PROVIDERS",
    "SES_CONFIGURATION_SET",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_SECURITY",
    "SMTP_TIMEOUT",
    "MAILGUN_API_KEY",
    "MAILGUN_DOMAIN",
    "MAILGUN_BASE_URL",
    "SENDGRID_API_KEY",
    "SENDGRID_BASE_URL",
    "CAPTURE_DIR",
    "PROVIDER_TIMEOUT_SECONDS",
    "PROVIDER_FAILURE_THRESHOLD",
    "PROVIDER_COOLDOWN_SECONDS",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)


def no_ses_client() -> Any:
    raise AssertionError("the SES client must not be created when ses is not listed")


def test_the_default_chain_is_ses_alone() -> None:
    made: list[str] = []

    def ses_client() -> str:
        made.append("client")
        return "client"

    chain = build_provider_chain(ProviderSettings(), ses_client_factory=ses_client)

    assert [type(p) for p in chain.providers] == [SesProvider]
    assert made == ["client"]


def test_capture_then_ses_builds_the_chain_in_that_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MAIL_PROVIDERS", "capture, SES")
    monkeypatch.setenv("CAPTURE_DIR", str(tmp_path / "outbox"))

    chain = build_provider_chain(load_provider_settings(), ses_client_factory=object)

    assert [p.name for p in chain.providers] == ["capture", "ses"]
    assert isinstance(chain.providers[0], CaptureProvider)
    assert chain.providers[0].directory == tmp_path / "outbox"


def test_every_provider_can_be_configured_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "MAIL_PROVIDERS": "smtp,mailgun,sendgrid",
        "SMTP_HOST": "smtp.example.com",
        "SMTP_PORT": "465",
        "SMTP_SECURITY": "ssl",
        "SMTP_USERNAME": "user",
        "SMTP_PASSWORD": "secret",
        "MAILGUN_API_KEY": "key",
        "MAILGUN_DOMAIN": "mg.example.com",
        "MAILGUN_BASE_URL": "https://api.eu.mailgun.net",
        "SENDGRID_API_KEY": "SG.key",
    }.items():
        monkeypatch.setenv(name, value)

    settings = load_provider_settings()
    chain = build_provider_chain(settings, ses_client_factory=no_ses_client)

    assert [type(p) for p in chain.providers] == [SmtpProvider, MailgunProvider, SendGridProvider]
    assert settings.smtp_port == 465
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"MAIL_PROVIDERS": "smtp"}, "MAIL_PROVIDERS includes smtp but SMTP_HOST is not set"),
        (
            {"MAIL_PROVIDERS": "mailgun", "MAILGUN_DOMAIN": "mg.example.com"},
            "MAIL_PROVIDERS includes mailgun but MAILGUN_API_KEY is not set",
        ),
        (
            {"MAIL_PROVIDERS": "mailgun", "MAILGUN_API_KEY": "key"},
            "MAIL_PROVIDERS includes mailgun but MAILGUN_DOMAIN is not set",
        ),
        (
            {"MAIL_PROVIDERS": "ses,sendgrid"},
            "MAIL_PROVIDERS includes sendgrid but SENDGRID_API_KEY is not set",
        ),
        ({"MAIL_PROVIDERS": "ses,postmark"}, "unknown provider 'postmark'"),
        (
            {"MAIL_PROVIDERS": "smtp", "SMTP_HOST": "h", "SMTP_USERNAME": "u"},
            "SMTP_USERNAME is set but SMTP_PASSWORD is not set",
        ),
        ({"MAIL_PROVIDERS": "ses,ses"}, "lists a provider twice"),
        ({"MAIL_PROVIDERS": " , "}, "must name at least one provider"),
        ({"SMTP_SECURITY": "tls"}, "SMTP_SECURITY"),
    ],
)
def test_a_missing_or_invalid_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigurationError) as raised:
        load_provider_settings()

    assert expected in raised.value.message


def test_settings_can_be_passed_directly_and_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MAIL_PROVIDERS", "ses")
    monkeypatch.setenv("CAPTURE_DIR", str(tmp_path / "from-the-environment"))

    settings = ProviderSettings(mail_providers=["capture"], capture_dir=tmp_path / "given")
    chain = build_provider_chain(settings, ses_client_factory=no_ses_client)

    [capture] = chain.providers
    assert isinstance(capture, CaptureProvider)
    assert capture.directory == tmp_path / "given"


def test_settings_passed_directly_are_checked_too() -> None:
    with pytest.raises(ValidationError, match="SMTP_HOST is not set"):
        ProviderSettings(mail_providers=["smtp"])


def test_overrides_from_a_secret_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAIL_PROVIDERS", "smtp")
    monkeypatch.setenv("SMTP_HOST", "env.example.com")
    monkeypatch.setenv("SMTP_PORT", "2525")

    settings = load_provider_settings(smtp_host="secret.example.com")

    assert (settings.smtp_host, settings.smtp_port) == ("secret.example.com", 2525)
