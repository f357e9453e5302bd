"""SesProvider's error translation and tag sanitising.

moto's SES cannot throttle, fail with 5xx or suspend an account, so these cases use a
hand-written client that raises the ``ClientError`` botocore builds from such an answer
(no boto3 call is patched; the happy paths run against moto in tests/integration).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.errors import (
    MessageRejectedError,
    ProviderError,
    ProviderThrottledError,
    ProviderUnavailableError,
)
from chalicelib.providers.ses import SesProvider, sanitise_tags
from tests.support.fake_providers import make_message


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("TooManyRequestsException", 429, ProviderThrottledError),
        ("Throttling", 400, ProviderThrottledError),
        ("ThrottlingException", 400, ProviderThrottledError),
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
    client = AnsweringSes(code, status)

    with pytest.raises(expected) as raised:
        SesProvider(client).send(make_message())  # type: ignore[arg-type]

    assert type(raised.value) is expected  # a throttle is not an outage, nor the reverse
    assert client.requests[0]["Destination"]["ToAddresses"][0].endswith("<alice@example.org>")
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["HTTPStatusCode"] == status


class AnsweringSes:
    """An SES v2 client that answers every SendEmail with one error, and keeps the requests."""

    def __init__(self, code: str, status: int) -> None:
        self.requests: list[dict[str, Any]] = []
        self._answer = {
            "Error": {"Code": code, "Message": "refused"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    def send_email(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        raise ClientError(self._answer, "SendEmail")  # type: ignore[arg-type]


def test_tags_are_reduced_to_the_characters_ses_accepts() -> None:
    tags = sanitise_tags(
        {"campaign": "spring-2026", "project id": "p/42", "ünï": "", "x" * 300: "v"}
    )

    assert tags == [
        {"Name": "campaign", "Value": "spring-2026"},
        {"Name": "project_id", "Value": "p_42"},
        {"Name": "x" * 256, "Value": "v"},
    ]
