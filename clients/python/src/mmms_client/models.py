"""The bodies and answers of the MMMS API, generated from docs/openapi.json: do not edit.

Regenerate with `make openapi` (datamodel-code-generator, TypedDict output).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias

from typing_extensions import TypedDict

OriginName: TypeAlias = str


class AddOriginsRequest(TypedDict, closed=True):
    origin_names: list[OriginName]


Address: TypeAlias = str


class AddSuppressionsRequest(TypedDict, closed=True):
    addresses: list[Address]
    reason: NotRequired[Literal['manual']]


class ApiKeyDeleted(TypedDict):
    deleted: bool
    api_key: str


class AttachmentIn(TypedDict, closed=True):
    filename: str
    content_type: str
    content: str


class CreateApiKeyRequest(TypedDict, closed=True):
    name: str
    origin_names: list[OriginName]
    expires_at: NotRequired[str | None]
    mode: NotRequired[Literal['live', 'test']]


DeliveryState: TypeAlias = Literal['queued', 'sent', 'delivered', 'bounced', 'complained', 'failed', 'suppressed']


class DeliveryStatus(TypedDict):
    """
    The seed's status object (``data.status`` of a send, ``result`` of a report).
    """

    email_id: str
    email_recipient_id: str
    recipient: str
    status: DeliveryState
    message_id: str | None
    status_detail: str | None
    last_error: str | None
    queued_at: str | None
    sent_at: str | None
    provider: NotRequired[str | None]


class EnvelopeApiKeyDeleted(TypedDict):
    status: int
    message: str
    data: ApiKeyDeleted


class ErrorEnvelope(TypedDict):
    """
    The error envelope of every failed request (SPEC section 3).
    """

    status: int
    error: str
    error_type: str
    message: str
    details: NotRequired[Any]
    request_id: str


MailgunWebhook = TypedDict(
    'MailgunWebhook',
    {
        'signature': dict[str, str],
        'event-data': dict[str, Any],
    },
)


class OriginOut(TypedDict):
    name: str
    created_at: str


class OriginsAdded(TypedDict):
    api_key: str
    added_origins: list[OriginOut]


class RecipientEvent(TypedDict):
    type: str
    at: str
    provider: str | None
    detail: str | None


class RecipientIn(TypedDict, closed=True):
    name: NotRequired[str | None]
    mail: str
    company: NotRequired[str | None]
    emailRecipientId: NotRequired[str | None]


class RecipientStatus(TypedDict):
    """
    A recipient as the status lookup shows it: the seed's status object + ``updated_at``.
    """

    email_id: str
    email_recipient_id: str
    recipient: str
    status: DeliveryState
    message_id: str | None
    status_detail: str | None
    last_error: str | None
    queued_at: str | None
    sent_at: str | None
    provider: NotRequired[str | None]
    updated_at: str | None


class RecipientStatusData(TypedDict):
    """
    ``data`` of GET /v1/mail/{email_id}/recipients/{email_recipient_id}.
    """

    email_id: str
    email_recipient_id: str
    recipient: str
    status: DeliveryState
    message_id: str | None
    status_detail: str | None
    last_error: str | None
    queued_at: str | None
    sent_at: str | None
    provider: NotRequired[str | None]
    updated_at: str | None
    events: list[RecipientEvent]


SendGridWebhook: TypeAlias = list[dict[str, Any]]
"""
What SendGrid posts: a batch of events (signed in the headers).
"""


CcItem: TypeAlias = str


BccItem: TypeAlias = str


class SendMailRequest(TypedDict, closed=True):
    """
    The body of POST /v1/mail.
    """

    recipients: list[RecipientIn]
    sender_name: NotRequired[str | None]
    sender_email: str
    sender_organisation_name: NotRequired[str | None]
    subject: str
    html_template: str
    text_template: NotRequired[str | None]
    client_env_id: NotRequired[str | None]
    email_id: str
    emailRecipientId: NotRequired[str | None]
    projectId: NotRequired[str | None]
    closureId: NotRequired[str | None]
    cc: NotRequired[list[CcItem]]
    bcc: NotRequired[list[BccItem]]
    reply_to: NotRequired[str | None]
    attachments: NotRequired[list[AttachmentIn]]
    metadata: NotRequired[dict[str, str]]
    list_unsubscribe: NotRequired[str | None]


class SingleSendData(TypedDict):
    """
    ``data`` of a one-recipient send (200 sent, 202 queued for retry).
    """

    message_id: str | None
    ses_response: dict[str, str] | None
    status: DeliveryStatus


class SuppressionDeleted(TypedDict):
    deleted: bool
    address: str


class SuppressionOut(TypedDict):
    address: str
    reason: Literal['bounce', 'complaint', 'manual']
    email_id: str | None
    detail: str | None
    created_at: str


class SuppressionsAdded(TypedDict):
    added: list[SuppressionOut]


class WebhookAccepted(TypedDict):
    received: int
    applied: int


class ApiKeyCreated(TypedDict):
    key_id: str
    name: str
    api_key: str
    is_active: bool
    created_at: str
    origins: list[OriginOut]
    expires_at: str | None


class BulkAcceptedData(TypedDict):
    """
    ``data`` of a bulk send (202): every recipient with its current status.
    """

    email_id: str
    count: int
    recipients: list[DeliveryStatus]


class EmailStatusData(TypedDict):
    """
    ``data`` of GET /v1/mail/{email_id}: one page of the email's recipients.
    """

    email_id: str
    count: int
    recipients: list[RecipientStatus]
    next_cursor: str | None


class EnvelopeApiKeyCreated(TypedDict):
    status: int
    message: str
    data: ApiKeyCreated


class EnvelopeEmailStatusData(TypedDict):
    status: int
    message: str
    data: EmailStatusData


class EnvelopeOriginsAdded(TypedDict):
    status: int
    message: str
    data: OriginsAdded


class EnvelopeRecipientStatusData(TypedDict):
    status: int
    message: str
    data: RecipientStatusData


class EnvelopeSingleSendData(TypedDict):
    status: int
    message: str
    data: SingleSendData


class EnvelopeSuppressionDeleted(TypedDict):
    status: int
    message: str
    data: SuppressionDeleted


class EnvelopeSuppressionsAdded(TypedDict):
    status: int
    message: str
    data: SuppressionsAdded


class EnvelopeWebhookAccepted(TypedDict):
    status: int
    message: str
    data: WebhookAccepted


QueuedData: TypeAlias = SingleSendData | BulkAcceptedData


class SuppressionList(TypedDict):
    suppressions: list[SuppressionOut]
    next_cursor: str | None


class EnvelopeQueuedData(TypedDict):
    status: int
    message: str
    data: QueuedData


class EnvelopeSuppressionList(TypedDict):
    status: int
    message: str
    data: SuppressionList
