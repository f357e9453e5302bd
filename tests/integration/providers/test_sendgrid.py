"""SendGridProvider against the local imitation of SendGrid's v3 Mail Send API."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from chalicelib.errors import MessageRejectedError, ProviderUnavailableError
from chalicelib.providers.base import Address
from chalicelib.providers.sendgrid import SendGridProvider
from tests.support.fake_providers import PDF_BYTES, make_message, with_attachment
from tests.support.http_provider_server import SENDGRID_API_KEY, FakeProviderApi


@pytest.fixture
def sendgrid(provider_api: FakeProviderApi) -> Iterator[SendGridProvider]:
    provider = SendGridProvider(SENDGRID_API_KEY, base_url=provider_api.base_url, timeout=0.3)
    yield provider
    provider.close()


def test_the_json_body_is_sent_as_documented(
    provider_api: FakeProviderApi, sendgrid: SendGridProvider
) -> None:
    result = sendgrid.send(with_attachment(make_message(message_id="<mmms-1@example.com>")))

    [request] = provider_api.requests_to("sendgrid")
    assert request.headers["authorization"] == f"Bearer {SENDGRID_API_KEY}"
    assert request.headers["content-type"] == "application/json"
    body = request.json
    assert body["personalizations"] == [
        {
            "to": [{"email": "alice@example.org", "name": "Älice Müller"}],
            "cc": [{"email": "carol@example.org", "name": "Carol"}],
            "bcc": [{"email": "bob@example.net"}],
        }
    ]
    assert body["from"] == {"email": "noreply@example.com", "name": "Jöhn Dœ"}
    assert body["reply_to"] == {"email": "support@example.com", "name": "Support"}
    assert body["subject"] == "Grüße ✓"
    assert [part["type"] for part in body["content"]] == ["text/plain", "text/html"]
    [attachment] = body["attachments"]
    assert base64.b64decode(attachment["content"]) == PDF_BYTES
    assert attachment["filename"] == "Rechnung März.pdf"
    assert attachment["disposition"] == "attachment"
    assert body["headers"] == {"List-Unsubscribe": "<mailto:unsubscribe@example.com>"}
    assert body["custom_args"] == {"campaign": "spring-2026", "project id": "p/42"}
    assert result.provider == "sendgrid"
    assert request.answered_id is not None
    assert result.message_id == request.answered_id  # SendGrid's X-Message-Id
    assert result.response == {"status": 202, "X-Message-Id": request.answered_id}


def test_duplicate_addresses_across_to_cc_bcc_are_sent_once(
    provider_api: FakeProviderApi, sendgrid: SendGridProvider
) -> None:
    sendgrid.send(
        make_message(
            cc=(Address("ALICE@example.org"),),
            reply_to=(Address("a@example.com"), Address("b@example.com")),
        )
    )

    body = provider_api.requests_to("sendgrid")[0].json
    assert "cc" not in body["personalizations"][0]
    assert [r["email"] for r in body["reply_to_list"]] == ["a@example.com", "b@example.com"]


def test_503_is_unavailable(provider_api: FakeProviderApi, sendgrid: SendGridProvider) -> None:
    provider_api.script("sendgrid", "unavailable")

    with pytest.raises(ProviderUnavailableError, match="HTTP 503"):
        sendgrid.send(make_message())


def test_a_timeout_is_unavailable(
    provider_api: FakeProviderApi, sendgrid: SendGridProvider
) -> None:
    provider_api.script("sendgrid", "timeout")

    with pytest.raises(ProviderUnavailableError, match="Timeout"):
        sendgrid.send(make_message())


def test_an_invalid_recipient_is_rejected_with_sendgrids_errors(
    provider_api: FakeProviderApi, sendgrid: SendGridProvider
) -> None:
    provider_api.script("sendgrid", "invalid_recipient")

    with pytest.raises(MessageRejectedError, match="Does not contain a valid address") as raised:
        sendgrid.send(make_message())
    [error] = raised.value.response["errors"]
    assert error["field"] == "personalizations.0.to.0.email"
    assert error["help"] == ("https://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html")


def test_a_wrong_api_key_is_unavailable_not_a_rejection(provider_api: FakeProviderApi) -> None:
    provider = SendGridProvider("SG.wrong", base_url=provider_api.base_url)

    with pytest.raises(ProviderUnavailableError, match="HTTP 401") as raised:
        provider.send(make_message())
    assert "authorization grant" in raised.value.response["errors"][0]["message"]
