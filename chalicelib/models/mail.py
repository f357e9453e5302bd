"""POST /v1/mail, the processing-queue message and the result message (seed 002 formats).

Field names are the seed's, camelCase included (``emailRecipientId``, ``projectId``).
Addresses are checked with email-validator (syntax only: no DNS at request time) and
normalised; display names, the subject and file names may not carry CR/LF.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chalicelib.models.common import NoNulModel, RequestModel, UtcDatetime

MAX_ID_LENGTH = 200


def _valid_address(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as err:
        raise ValueError(f"invalid email address: {err}") from err


def _single_line(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("must not contain line breaks (CR/LF)")
    return value


_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def _content_type(value: str) -> str:
    lowered = value.strip().lower()
    if not _CONTENT_TYPE.match(lowered):
        raise ValueError("not a MIME type like application/pdf")
    return lowered


def _file_name(value: str) -> str:
    _single_line(value)
    if "/" in value or "\\" in value or value in {".", ".."}:
        raise ValueError("a file name, without a path")
    return value


def _unsubscribe_target(value: str) -> str:
    _single_line(value)
    if not value.startswith(("https://", "mailto:")) or " " in value or ">" in value:
        raise ValueError("an https:// URL or a mailto: address")
    return value


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError("content must be base64") from err
    return value


EmailAddress = Annotated[str, Field(max_length=320), AfterValidator(_valid_address)]
SingleLine = Annotated[str, AfterValidator(_single_line)]
DisplayName = Annotated[str, Field(max_length=200), AfterValidator(_single_line)]
UnsubscribeTarget = Annotated[str, Field(max_length=2000), AfterValidator(_unsubscribe_target)]
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
MetadataKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class DeliveryState(enum.StrEnum):
    """A recipient's status (SPEC 9). ``FINAL`` ones never change again."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FAILED = "failed"
    SUPPRESSED = "suppressed"

    @property
    def succeeded(self) -> bool:
        """Whether a report of this status says ``success: true`` (nothing went wrong yet)."""
        return self in (DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.DELIVERED)


class RecipientIn(RequestModel):
    name: DisplayName | None = None
    mail: EmailAddress
    company: Annotated[str, Field(max_length=200)] | None = None
    emailRecipientId: Identifier | None = None


class AttachmentIn(RequestModel):
    filename: Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_file_name)]
    content_type: Annotated[str, AfterValidator(_content_type)]
    content: Annotated[str, AfterValidator(_base64)] = Field(description="base64")


class SendMailRequest(RequestModel):
    """The body of POST /v1/mail."""

    recipients: list[RecipientIn] = Field(min_length=1)
    sender_name: DisplayName | None = None
    sender_email: EmailAddress
    sender_organisation_name: DisplayName | None = None
    subject: Annotated[str, Field(min_length=1, max_length=998), AfterValidator(_single_line)]
    html_template: str = Field(min_length=1)
    text_template: str | None = None
    client_env_id: Identifier | None = None
    email_id: Identifier
    emailRecipientId: Identifier | None = None
    projectId: Identifier | None = None
    closureId: Identifier | None = None
    cc: list[EmailAddress] = Field(default_factory=list, max_length=50)
    bcc: list[EmailAddress] = Field(default_factory=list, max_length=50)
    reply_to: EmailAddress | None = None
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)
    metadata: dict[MetadataKey, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, max_length=20
    )
    list_unsubscribe: UnsubscribeTarget | None = Field(
        default=None,
        description="https:// URL (one-click, RFC 8058) or mailto: for List-Unsubscribe",
    )


class ProcessingMessage(NoNulModel):
    """One recipient's email on the processing queue: the seed's format plus the additions.

    Producers outside this service may send the seed's fields only; unknown fields are
    ignored. ``api_key_id`` is set by MMMS itself.
    """

    model_config = ConfigDict(extra="ignore")

    email_id: Identifier
    email_recipient_id: Identifier | None = None
    client_env_id: str | None = None
    sender_email: EmailAddress
    sender_name: DisplayName | None = None
    sender_organisation_name: DisplayName | None = None
    subject: Annotated[str, Field(min_length=1, max_length=998), AfterValidator(_single_line)]
    html_template: str = Field(min_length=1)
    recipient_name: DisplayName | None = None
    recipient_email: EmailAddress
    recipient_company: str | None = None
    queued_at: UtcDatetime | None = None
    text_template: str | None = None
    cc: list[EmailAddress] = Field(default_factory=list)
    bcc: list[EmailAddress] = Field(default_factory=list)
    reply_to: EmailAddress | None = None
    attachments: list[AttachmentIn] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    list_unsubscribe: UnsubscribeTarget | None = None
    projectId: str | None = None
    closureId: str | None = None
    api_key_id: str | None = None

    @property
    def recipient_id(self) -> str:
        """The idempotency id: the given recipient id, else the address."""
        return self.email_recipient_id or self.recipient_email.lower()


class DeliveryStatus(BaseModel):
    """The seed's status object (``data.status`` of a send, ``result`` of a report)."""

    email_id: str
    email_recipient_id: str
    recipient: str
    status: DeliveryState
    message_id: str | None
    status_detail: str | None
    last_error: str | None
    queued_at: UtcDatetime | None
    sent_at: UtcDatetime | None
    provider: str | None = None


class ProcessingResult(BaseModel):
    """A status report on the result queue (seed format plus pass-through fields)."""

    success: bool
    email_id: str
    email_recipient_id: str
    recipient: str
    status: DeliveryState
    result: DeliveryStatus
    client_env_id: str | None = None
    projectId: str | None = None
    closureId: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class SingleSendData(BaseModel):
    """``data`` of a one-recipient send (200 sent, 202 queued for retry)."""

    message_id: str | None
    ses_response: dict[str, str] | None
    status: DeliveryStatus


class BulkAcceptedData(BaseModel):
    """``data`` of a bulk send (202): every recipient with its current status."""

    email_id: str
    count: int
    recipients: list[DeliveryStatus]
