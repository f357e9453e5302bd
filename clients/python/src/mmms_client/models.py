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


CampaignStatus: TypeAlias = Literal['awaiting_upload', 'validating', 'scheduled', 'sending', 'completed', 'cancelled', 'failed']


AllowedIp: TypeAlias = str


CcItem: TypeAlias = str


BccItem: TypeAlias = str


class CreateCampaignRequest1(TypedDict, closed=True):
    """
    The body of POST /v1/campaigns.
    """

    sender_name: NotRequired[str | None]
    sender_email: str
    sender_organisation_name: NotRequired[str | None]
    subject: str | None
    html_template: str | None
    text_template: NotRequired[str | None]
    template_id: NotRequired[str | None]
    template_version: NotRequired[int | None]
    params: NotRequired[dict[str, str]]
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
    format: NotRequired[Literal['csv', 'jsonl']]
    send_at: NotRequired[str | None]
    skip_invalid: NotRequired[bool]


class CreateCampaignRequest2(TypedDict, closed=True):
    """
    The body of POST /v1/campaigns.
    """

    sender_name: NotRequired[str | None]
    sender_email: str
    sender_organisation_name: NotRequired[str | None]
    subject: NotRequired[str | None]
    html_template: NotRequired[str | None]
    text_template: NotRequired[str | None]
    template_id: str | None
    template_version: NotRequired[int | None]
    params: NotRequired[dict[str, str]]
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
    format: NotRequired[Literal['csv', 'jsonl']]
    send_at: NotRequired[str | None]
    skip_invalid: NotRequired[bool]


CreateCampaignRequest: TypeAlias = CreateCampaignRequest1 | CreateCampaignRequest2


DeliveryState: TypeAlias = Literal['queued', 'sent', 'delivered', 'bounced', 'complained', 'failed', 'suppressed', 'cancelled']


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


AllowedSender: TypeAlias = str


AllowedRecipientDomain: TypeAlias = str


TemplateId: TypeAlias = str


class KeyPolicyIn(TypedDict, closed=True):
    """
    What a key may do (SPEC 12). Every field is optional; one left out (or ``null``)
    takes its default: any sender, any recipient domain, inline templates allowed, any stored
    template, the deployment's recipients per request, and for browser keys the deployment's
    daily quota and per-IP limit (server keys: none).
    """

    allowed_senders: NotRequired[list[AllowedSender] | None]
    allowed_recipient_domains: NotRequired[list[AllowedRecipientDomain] | None]
    inline_templates: NotRequired[bool | None]
    template_ids: NotRequired[list[TemplateId] | None]
    max_recipients_per_request: NotRequired[int | None]
    daily_recipient_quota: NotRequired[int | None]
    per_ip_per_minute: NotRequired[int | None]
    require_captcha: NotRequired[bool | None]


class KeyPolicyOut(TypedDict):
    """
    A key's policy with the defaults filled in; ``null`` means no restriction.
    """

    allowed_senders: list[str] | None
    allowed_recipient_domains: list[str] | None
    inline_templates: bool
    template_ids: list[str] | None
    max_recipients_per_request: int
    daily_recipient_quota: int | None
    per_ip_per_minute: int | None
    require_captcha: bool


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


class PreviewRecipient(TypedDict, closed=True):
    name: NotRequired[str | None]
    mail: NotRequired[str | None]
    company: NotRequired[str | None]
    emailRecipientId: NotRequired[str | None]


class PreviewRequest(TypedDict, closed=True):
    params: NotRequired[dict[str, str]]
    recipient: NotRequired[PreviewRecipient]
    version: NotRequired[int | None]


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
    params: NotRequired[dict[str, str]]


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


class RowCounts(TypedDict):
    total: int
    valid: int
    invalid: int


class RowError(TypedDict):
    """
    An invalid row: its line in the file (the header is line 1).
    """

    line: int
    email_recipient_id: str | None
    field: str
    message: str


SendGridWebhook: TypeAlias = list[dict[str, Any]]
"""
What SendGrid posts: a batch of events (signed in the headers).
"""


class SendMailRequest1(TypedDict, closed=True):
    """
    The body of POST /v1/mail.
    """

    sender_name: NotRequired[str | None]
    sender_email: str
    sender_organisation_name: NotRequired[str | None]
    subject: str | None
    html_template: str | None
    text_template: NotRequired[str | None]
    template_id: NotRequired[str | None]
    template_version: NotRequired[int | None]
    params: NotRequired[dict[str, str]]
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
    recipients: list[RecipientIn]


class SendMailRequest2(TypedDict, closed=True):
    """
    The body of POST /v1/mail.
    """

    sender_name: NotRequired[str | None]
    sender_email: str
    sender_organisation_name: NotRequired[str | None]
    subject: NotRequired[str | None]
    html_template: NotRequired[str | None]
    text_template: NotRequired[str | None]
    template_id: str | None
    template_version: NotRequired[int | None]
    params: NotRequired[dict[str, str]]
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
    recipients: list[RecipientIn]


SendMailRequest: TypeAlias = SendMailRequest1 | SendMailRequest2


class SingleSendData(TypedDict):
    """
    ``data`` of a one-recipient send (200 sent, 202 queued for retry).
    """

    message_id: str | None
    ses_response: dict[str, str] | None
    status: DeliveryStatus


class StatusCounts(TypedDict):
    """
    Recipients per status.
    """

    queued: NotRequired[int]
    sent: NotRequired[int]
    delivered: NotRequired[int]
    bounced: NotRequired[int]
    complained: NotRequired[int]
    failed: NotRequired[int]
    suppressed: NotRequired[int]
    cancelled: NotRequired[int]


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


class TemplateArchived(TypedDict):
    template_id: str
    archived: bool


class TemplateOut(TypedDict):
    template_id: str
    name: str
    version: int
    subject: str
    html: str
    text: str | None
    description: str | None
    sample_params: dict[str, str]
    params: list[str]
    created_at: str


class TemplatePreview(TypedDict):
    subject: str
    html: str
    text: str


class TemplateRequest(TypedDict, closed=True):
    """
    POST /v1/templates (version 1) and PUT /v1/templates/{id} (the next version).
    """

    name: str
    subject: str
    html: str
    text: NotRequired[str | None]
    description: NotRequired[str | None]
    sample_params: NotRequired[dict[str, str]]


class UpdateApiKeyRequest(TypedDict, closed=True):
    """
    PATCH /v1/api-key/{api_key}: the policy fields given replace the key's (``null``: back
    to the default); ``allowed_ips`` (server keys) replaces the list when given.
    """

    policy: NotRequired[KeyPolicyIn | None]
    allowed_ips: NotRequired[list[AllowedIp] | None]


class UploadTarget(TypedDict):
    """
    Where and how to send the file (once, before ``expires_at``).
    """

    method: Literal['PUT']
    url: str
    headers: dict[str, str]
    max_bytes: int
    expires_at: str


class WebhookAccepted(TypedDict):
    received: int
    applied: int


class ApiKeyCreated(TypedDict):
    """
    The new key: its details, the seed's ``origins``, and the key, shown once.
    """

    key_id: str
    name: str
    kind: Literal['browser', 'server']
    mode: Literal['live', 'test']
    is_active: bool
    origin_names: list[str]
    allowed_ips: list[str]
    policy: KeyPolicyOut
    created_at: str
    expires_at: str | None
    recipients_today: int
    api_key: str
    origins: list[OriginOut]


class ApiKeyDetails(TypedDict):
    """
    A key as GET /v1/api-key/{api_key} shows it: never the key or its hash.
    """

    key_id: str
    name: str
    kind: Literal['browser', 'server']
    mode: Literal['live', 'test']
    is_active: bool
    origin_names: list[str]
    allowed_ips: list[str]
    policy: KeyPolicyOut
    created_at: str
    expires_at: str | None
    recipients_today: int


class BulkAcceptedData(TypedDict):
    """
    ``data`` of a bulk send (202): every recipient with its current status.
    """

    email_id: str
    count: int
    recipients: list[DeliveryStatus]


class CampaignCreated(TypedDict):
    """
    ``data`` of POST /v1/campaigns (201).
    """

    campaign_id: str
    email_id: str
    status: CampaignStatus
    upload: UploadTarget


class CampaignData(TypedDict):
    """
    ``data`` of GET /v1/campaigns/{campaign_id} (and of a cancel).
    """

    campaign_id: str
    email_id: str
    status: CampaignStatus
    format: Literal['csv', 'jsonl']
    rows: RowCounts
    counts: StatusCounts
    errors: list[RowError]
    error_count: int
    send_at: str | None
    created_at: str
    updated_at: str


class CampaignList(TypedDict):
    """
    ``data`` of GET /v1/campaigns: the key's campaigns, newest first.
    """

    campaigns: list[CampaignData]
    next_cursor: str | None


class CreateApiKeyRequest(TypedDict, closed=True):
    name: str
    kind: NotRequired[Literal['browser', 'server']]
    origin_names: NotRequired[list[OriginName]]
    allowed_ips: NotRequired[list[AllowedIp]]
    expires_at: NotRequired[str | None]
    mode: NotRequired[Literal['live', 'test']]
    policy: NotRequired[KeyPolicyIn]


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


class EnvelopeApiKeyDetails(TypedDict):
    status: int
    message: str
    data: ApiKeyDetails


class EnvelopeCampaignCreated(TypedDict):
    status: int
    message: str
    data: CampaignCreated


class EnvelopeCampaignData(TypedDict):
    status: int
    message: str
    data: CampaignData


class EnvelopeCampaignList(TypedDict):
    status: int
    message: str
    data: CampaignList


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


class EnvelopeTemplateArchived(TypedDict):
    status: int
    message: str
    data: TemplateArchived


class EnvelopeTemplateOut(TypedDict):
    status: int
    message: str
    data: TemplateOut


class EnvelopeTemplatePreview(TypedDict):
    status: int
    message: str
    data: TemplatePreview


class EnvelopeWebhookAccepted(TypedDict):
    status: int
    message: str
    data: WebhookAccepted


QueuedData: TypeAlias = SingleSendData | BulkAcceptedData


class SuppressionList(TypedDict):
    suppressions: list[SuppressionOut]
    next_cursor: str | None


class TemplateList(TypedDict):
    templates: list[TemplateOut]
    next_cursor: str | None


class EnvelopeQueuedData(TypedDict):
    status: int
    message: str
    data: QueuedData


class EnvelopeSuppressionList(TypedDict):
    status: int
    message: str
    data: SuppressionList


class EnvelopeTemplateList(TypedDict):
    status: int
    message: str
    data: TemplateList
