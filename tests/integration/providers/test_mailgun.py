"""MailgunProvider against the local imitation of Mailgun's messages.mime API."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from chalicelib.errors import MessageRejectedError, ProviderThrottledError, ProviderUnavailableError
from chalicelib.providers.mailgun import MailgunProvider
from tests.support.fake_providers import PDF_BYTES, make_message, with_attachment
from tests.support.http_provider_server import MAILGUN_API_KEY, MAILGUN_DOMAIN, FakeProviderApi


@pytest.fixture
def mailgun(provider_api: FakeProviderApi) -> Iterator[MailgunProvider]:
    provider = MailgunProvider(
        MAILGUN_API_KEY, MAILGUN_DOMAIN, base_url=provider_api.base_url, timeout=0.3
    )
    yield provider
    provider.close()


def test_the_mime_message_is_uploaded_as_documented(
    provider_api: FakeProviderApi, mailgun: MailgunProvider
) -> None:
    result = mailgun.send(with_attachment(make_message()))

    [request] = provider_api.requests_to("mailgun")
    assert request.path == f"/v3/{MAILGUN_DOMAIN}/messages.mime"
    expected_auth = base64.b64encode(f"api:{MAILGUN_API_KEY}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected_auth}"
    assert request.form_values("to") == [
        "alice@example.org",
        "carol@example.org",
        "bob@example.net",
    ]
    assert request.form_values("v:campaign") == ["spring-2026"]
    uploaded = request.files["message"].message()
    assert uploaded["Bcc"] is None
    assert uploaded["Subject"] == "Grüße ✓"
    assert next(iter(uploaded.iter_attachments())).get_content() == PDF_BYTES
    assert result.provider == "mailgun"
    assert request.answered_id is not None
    assert result.message_id == request.answered_id.strip("<>")  # Mailgun's id, unbracketed
    assert result.response["message"] == "Queued. Thank you."


def test_503_is_unavailable(provider_api: FakeProviderApi, mailgun: MailgunProvider) -> None:
    provider_api.script("mailgun", "unavailable")

    with pytest.raises(ProviderUnavailableError, match="HTTP 503"):
        mailgun.send(make_message())


def test_429_is_throttled(provider_api: FakeProviderApi, mailgun: MailgunProvider) -> None:
    provider_api.script("mailgun", "throttled")

    with pytest.raises(ProviderThrottledError, match="HTTP 429"):
        mailgun.send(make_message())


def test_a_timeout_is_unavailable(provider_api: FakeProviderApi, mailgun: MailgunProvider) -> None:
    provider_api.script("mailgun", "timeout")

    with pytest.raises(ProviderUnavailableError, match="Timeout"):
        mailgun.send(make_message())


def test_an_invalid_recipient_is_rejected(
    provider_api: FakeProviderApi, mailgun: MailgunProvider
) -> None:
    provider_api.script("mailgun", "invalid_recipient")

    with pytest.raises(MessageRejectedError, match="HTTP 400") as raised:
        mailgun.send(make_message())
    assert raised.value.response["body"]["message"].startswith("to parameter is not a valid")


def test_a_wrong_api_key_is_unavailable_not_a_rejection(provider_api: FakeProviderApi) -> None:
    provider = MailgunProvider("key-wrong", MAILGUN_DOMAIN, base_url=provider_api.base_url)

    with pytest.raises(ProviderUnavailableError, match="HTTP 401") as raised:
        provider.send(make_message())
    assert raised.value.response == {"status": 401, "body": "Forbidden"}


def test_nothing_listening_is_unavailable() -> None:
    provider = MailgunProvider(MAILGUN_API_KEY, MAILGUN_DOMAIN, base_url="http://127.0.0.1:1")

    with pytest.raises(ProviderUnavailableError, match="ConnectionError"):
        provider.send(make_message())
