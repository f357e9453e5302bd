"""SesProvider's error translation and tag sanitising, with botocore's own Stubber."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.errors import MessageRejectedError, ProviderError, ProviderUnavailableError
from chalicelib.providers.ses import SesProvider, sanitise_tags
from tests.support.fake_providers import make_message


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("TooManyRequestsException", 429, ProviderUnavailableError),
        ("Throttling", 400, ProviderUnavailableError),
        ("LimitExceededException", 400, ProviderUnavailableError),
        ("SendingPausedException", 400, ProviderUnavailableError),
        ("InternalFailure", 500, ProviderUnavailableError),
        ("SomethingNew", 503, ProviderUnavailableError),
        ("MessageRejected", 400, MessageRejectedError),
        ("MailFromDomainNotVerifiedException", 400, MessageRejectedError),
        ("AccountSuspendedException", 400, ProviderUnavailableError),
        ("BadRequestException", 400, MessageRejectedError),
        ("NotFoundException", 404, MessageRejectedError),
        ("AccessDeniedException", 403, ProviderUnavailableError),
    ],
)
def test_ses_errors_are_translated(code: str, status: int, expected: type[ProviderError]) -> None:
    client = boto3.client(
        "sesv2", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "send_email",
            service_error_code=code,
            service_message="refused",
            http_status_code=status,
        )
        with pytest.raises(expected) as raised:
            SesProvider(client).send(make_message())

    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["HTTPStatusCode"] == status


def test_tags_are_reduced_to_the_characters_ses_accepts() -> None:
    tags = sanitise_tags(
        {"campaign": "spring-2026", "project id": "p/42", "ünï": "", "x" * 300: "v"}
    )

    assert tags == [
        {"Name": "campaign", "Value": "spring-2026"},
        {"Name": "project_id", "Value": "p_42"},
        {"Name": "x" * 256, "Value": "v"},
    ]
