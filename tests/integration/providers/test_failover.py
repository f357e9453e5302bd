"""The chain failing over from a real, broken primary to the (fake) SendGrid API."""

from __future__ import annotations

import logging

from chalicelib.providers.chain import ProviderChain
from chalicelib.providers.mailgun import MailgunProvider
from chalicelib.providers.sendgrid import SendGridProvider
from chalicelib.providers.smtp import SmtpProvider
from tests.support.fake_providers import make_message
from tests.support.http_provider_server import (
    MAILGUN_API_KEY,
    MAILGUN_DOMAIN,
    SENDGRID_API_KEY,
    FakeProviderApi,
)
from tests.support.smtp_server import unused_port


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_smtp_with_nothing_listening_fails_over_to_sendgrid(
    provider_api: FakeProviderApi,
) -> None:
    chain = ProviderChain(
        [
            SmtpProvider("127.0.0.1", unused_port(), security="none", timeout=2),
            SendGridProvider(SENDGRID_API_KEY, base_url=provider_api.base_url),
        ]
    )
    logger = logging.getLogger("mmms.providers")
    captured = _Records()
    logger.addHandler(captured)
    try:
        result = chain.send(make_message())
    finally:
        logger.removeHandler(captured)

    assert result.provider == "sendgrid"
    assert len(provider_api.requests_to("sendgrid")) == 1
    [record] = captured.records
    assert (record.__dict__["provider"], record.__dict__["next_provider"]) == ("smtp", "sendgrid")


def test_mailgun_answering_503_fails_over_to_sendgrid(provider_api: FakeProviderApi) -> None:
    provider_api.script("mailgun", "unavailable")
    chain = ProviderChain(
        [
            MailgunProvider(MAILGUN_API_KEY, MAILGUN_DOMAIN, base_url=provider_api.base_url),
            SendGridProvider(SENDGRID_API_KEY, base_url=provider_api.base_url),
        ]
    )

    result = chain.send(make_message())

    assert result.provider == "sendgrid"
    assert [r.provider for r in provider_api.requests] == ["mailgun", "sendgrid"]
