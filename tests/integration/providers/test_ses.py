"""SesProvider against moto's SES v2 server over HTTP."""

from __future__ import annotations

from email import message_from_string, policy
from email.message import EmailMessage
from typing import Any

import boto3
import pytest
from botocore.config import Config

from chalicelib.errors import MessageRejectedError, ProviderUnavailableError
from chalicelib.providers.base import Address
from chalicelib.providers.ses import SesProvider
from tests.support.fake_providers import PDF_BYTES, make_message, with_attachment
from tests.support.moto_server import MotoServer

SENDER = "noreply@example.com"


def ses_client(endpoint_url: str, region: str) -> Any:
    return boto3.client(
        "sesv2",
        endpoint_url=endpoint_url,
        region_name=region,
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
    )


@pytest.fixture
def ses(moto: MotoServer) -> SesProvider:
    moto.verify_ses_identity(SENDER)
    return SesProvider(ses_client(moto.endpoint_url, moto.region))


def test_a_simple_message_lands_in_ses(moto: MotoServer, ses: SesProvider) -> None:
    result = ses.send(make_message())

    [sent] = moto.ses_sent_messages()
    assert sent.id == result.message_id
    assert result.provider == "ses"
    assert result.response == {"MessageId": result.message_id}
    assert sent.subject == "Grüße ✓"
    assert sent.destinations == {
        "ToAddresses": ["=?utf-8?q?=C3=84lice_M=C3=BCller?= <alice@example.org>"],
        "CcAddresses": ["Carol <carol@example.org>"],
        "BccAddresses": ["bob@example.net"],
    }


def test_a_message_with_attachments_is_sent_raw(moto: MotoServer, ses: SesProvider) -> None:
    result = ses.send(with_attachment(make_message()))

    [sent] = moto.ses_sent_messages()
    assert sent.id == result.message_id
    assert "bob@example.net" in sent.destinations
    raw = message_from_string(sent.raw_data, policy=policy.default)
    assert isinstance(raw, EmailMessage)
    assert raw["Bcc"] is None
    assert raw["Subject"] == "Grüße ✓"
    assert next(iter(raw.iter_attachments())).get_content() == PDF_BYTES


def test_an_unverified_sender_is_rejected(moto: MotoServer, ses: SesProvider) -> None:
    with pytest.raises(MessageRejectedError) as raised:
        ses.send(make_message(sender=Address("who@unverified.test")))

    assert raised.value.provider == "ses"
    assert raised.value.response["Error"]["Code"] == "MessageRejected"
    assert moto.ses_sent_messages() == []


def test_an_unreachable_endpoint_is_unavailable(moto: MotoServer) -> None:
    provider = SesProvider(ses_client("http://127.0.0.1:1", moto.region))

    with pytest.raises(ProviderUnavailableError, match="SES unreachable"):
        provider.send(make_message())
