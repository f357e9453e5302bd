"""Amazon SES v2 (``SendEmail``) as a :class:`~chalicelib.providers.base.MailProvider`.

- No attachments: ``Content.Simple`` (Subject, Text, Html, plus ``Headers`` for the
  message's extra headers); SES builds the MIME itself.
- Attachments: ``Content.Raw`` with :func:`~chalicelib.providers.mime.build_mime`'s bytes.
- ``Destination`` always lists To, Cc and Bcc: for raw sends it is the envelope, so Bcc
  recipients receive the message although no Bcc header exists.
- ``EmailTags`` come from ``message.tags``. SES allows only ``[A-Za-z0-9_-]`` in tag names and
  values (at most 256 characters): every other character becomes ``_``, longer strings are
  cut, and a tag whose name or value is empty after that is dropped.

Error translation (``raise ... from err``, the SES error body travels in ``response``):

========================================================  ==============================
SES / botocore                                            MMMS
========================================================  ==============================
TooManyRequestsException, Throttling(Exception), 429     ProviderThrottledError (back off)
LimitExceededException (sending quota),                   ProviderUnavailableError
SendingPausedException and AccountSuspendedException
(the account cannot send, the message is fine: another
provider may send it), credential errors (AccessDenied,
UnrecognizedClient, InvalidClientTokenId,
SignatureDoesNotMatch), expired credentials, any 5xx,
EndpointConnectionError, connect/read timeouts,
any other BotoCoreError
MessageRejected, MailFromDomainNotVerifiedException,      MessageRejectedError
BadRequestException,
NotFoundException, every other 4xx, ParamValidationError
(botocore refused the request before sending it)
========================================================  ==============================

AccountSuspendedException and credential errors are logged at ERROR: the deployment is
misconfigured, which is no message's fault, so the chain fails over and the message is
retried later rather than failed for good.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from chalicelib.errors import (
    MessageRejectedError,
    ProviderThrottledError,
    ProviderUnavailableError,
)
from chalicelib.providers.base import Address, OutgoingMessage, SendResult
from chalicelib.providers.mime import address_header, build_mime, validate_headers

if TYPE_CHECKING:
    from mypy_boto3_sesv2.client import SESV2Client
    from mypy_boto3_sesv2.type_defs import (
        BodyTypeDef,
        DestinationTypeDef,
        EmailContentTypeDef,
        MessageTagTypeDef,
        MessageTypeDef,
        SendEmailRequestTypeDef,
    )

log = logging.getLogger("mmms.providers")

# Over the sending rate: back off and send again through SES (never fail over for it).
_THROTTLING_CODES = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException"})
_TRANSIENT_CODES = frozenset(
    {
        "LimitExceededException",
        "SendingPausedException",
        "AccountSuspendedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "InternalFailure",
    }
)
_MISCONFIGURATION_CODES = frozenset(
    {
        "AccountSuspendedException",
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_TAG_MAX = 256


class SesProvider:
    """Sends through SES v2 with a boto3 ``sesv2`` client the caller created.

    :meth:`max_send_rate` reads the account's sending rate once (``GetAccount``; SES v1's
    ``GetSendQuota`` through ``quota_client_factory`` where v2's is not available).
    """

    def __init__(
        self,
        client: SESV2Client,
        *,
        configuration_set: str | None = None,
        name: str = "ses",
        quota_client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.name = name
        self._client = client
        self._configuration_set = configuration_set
        self._quota_client_factory = quota_client_factory
        self._rate: float | None = None
        self._rate_read = False

    def max_send_rate(self) -> float | None:
        """The account's maximum send rate (emails/s), read once; None when unreadable."""
        if not self._rate_read:
            self._rate = self._read_rate()
            self._rate_read = True
        return self._rate

    def _read_rate(self) -> float | None:
        try:
            return float(self._client.get_account()["SendQuota"]["MaxSendRate"])
        except (BotoCoreError, ClientError, KeyError, TypeError, ValueError):
            pass
        if self._quota_client_factory is None:
            return None
        try:
            return float(self._quota_client_factory().get_send_quota()["MaxSendRate"])
        except (BotoCoreError, ClientError, KeyError, TypeError, ValueError):
            log.warning(
                "SES sending rate unknown: sends are not paced", extra={"provider": self.name}
            )
            return None

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            request = self._request(message)
        except ValueError as err:
            raise MessageRejectedError(self.name, f"invalid message: {err}") from err
        try:
            answer = self._client.send_email(**request)
        except ClientError as err:
            raise self._translate_client_error(err) from err
        except ParamValidationError as err:
            raise MessageRejectedError(self.name, f"invalid request: {err}") from err
        except BotoCoreError as err:
            raise ProviderUnavailableError(self.name, f"SES unreachable: {err}") from err
        message_id = answer["MessageId"]
        return SendResult(
            provider=self.name, message_id=message_id, response={"MessageId": message_id}
        )

    def close(self) -> None:
        """Nothing to release: the boto3 client belongs to the caller."""

    def _request(self, message: OutgoingMessage) -> SendEmailRequestTypeDef:
        request: SendEmailRequestTypeDef = {
            "FromEmailAddress": address_header([message.sender]),
            "Destination": _destination(message),
            "Content": _content(message),
        }
        if message.reply_to:
            request["ReplyToAddresses"] = _addresses(message.reply_to)
        tags = sanitise_tags(message.tags)
        if tags:
            request["EmailTags"] = tags
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        return request

    def _translate_client_error(
        self, err: ClientError
    ) -> ProviderUnavailableError | MessageRejectedError:
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        text = f"{code or 'error'} (HTTP {status}): {error.get('Message', '')}".strip()
        body: dict[str, Any] = {"Error": dict(error), "HTTPStatusCode": status}
        if code in _MISCONFIGURATION_CODES:
            log.error(
                "SES refuses this account or its credentials: check the deployment",
                extra={"provider": self.name, "ses_error_code": code},
            )
            # Misconfiguration, not this message's fault: fail over, and retry it later.
            return ProviderUnavailableError(self.name, text, response=body)
        if code in _THROTTLING_CODES or status == 429:
            return ProviderThrottledError(self.name, text, response=body)
        if code in _TRANSIENT_CODES or status >= 500:
            return ProviderUnavailableError(self.name, text, response=body)
        return MessageRejectedError(self.name, text, response=body)


def sanitise_tags(tags: Mapping[str, str]) -> list[MessageTagTypeDef]:
    """``tags`` as SES ``EmailTags``, reduced to the characters SES accepts (see module doc)."""
    result: list[MessageTagTypeDef] = []
    for raw_name, raw_value in tags.items():
        name = _TAG_UNSAFE.sub("_", raw_name)[:_TAG_MAX]
        value = _TAG_UNSAFE.sub("_", raw_value)[:_TAG_MAX]
        if name and value:
            result.append({"Name": name, "Value": value})
    return result


def _content(message: OutgoingMessage) -> EmailContentTypeDef:
    if message.attachments:
        return {"Raw": {"Data": build_mime(message).as_bytes()}}
    validate_headers(message)
    body: BodyTypeDef = {}
    if message.text:
        body["Text"] = {"Data": message.text, "Charset": "UTF-8"}
    if message.html:
        body["Html"] = {"Data": message.html, "Charset": "UTF-8"}
    simple: MessageTypeDef = {
        "Subject": {"Data": message.subject, "Charset": "UTF-8"},
        "Body": body,
    }
    if message.headers:
        simple["Headers"] = [{"Name": k, "Value": v} for k, v in message.headers.items()]
    return {"Simple": simple}


def _destination(message: OutgoingMessage) -> DestinationTypeDef:
    destination: DestinationTypeDef = {}
    if message.to:
        destination["ToAddresses"] = _addresses(message.to)
    if message.cc:
        destination["CcAddresses"] = _addresses(message.cc)
    if message.bcc:
        destination["BccAddresses"] = _addresses(message.bcc)
    return destination


def _addresses(addresses: Iterable[Address]) -> list[str]:
    return [address_header([address]) for address in addresses]
