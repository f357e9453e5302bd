"""POST /v1/mail, the processing-queue message and the result message (seed 002 formats).

Field names are the seed's, camelCase included (``emailRecipientId``, ``projectId``).
Addresses are checked with email-validator (syntax only: no DNS at request time) and
normalised; display names, the subject and file names may not carry CR/LF.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import re
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chalicelib.models.common import (
    EMAIL_PATTERN,
    JSON_INTEGER,
    NOT_BLANK,
    SINGLE_LINE,
    NoNulModel,
    RequestModel,
    UtcDatetime,
)
from chalicelib.models.templates import Params, TemplateId

MAX_ID_LENGTH = 200


_EMAIL = re.compile(EMAIL_PATTERN)


# Pure, and the same addresses come back (a bulk email's sender on each recipient's message):
# validated once per process, not once per message.
@functools.lru_cache(maxsize=4096)
def _valid_address(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(
            "not an address like name@example.com (ASCII; write an international domain"
            " in punycode, xn--...)"
        )
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as err:
        raise ValueError(f"invalid email address: {err}") from err


def checked_address(value: str) -> str:
    """``value`` normalised, if it is an address the API accepts; else ValueError (why)."""
    return _valid_address(value)


def _single_line(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("must not contain line breaks (CR/LF)")
    return value


# The document's pattern, matched whole (``$`` would take a trailing newline in Python, not in
# ECMA) before lower-casing (``"\u212a".lower()`` is ``"k"``).
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")


def _content_type(value: str) -> str:
    if not _CONTENT_TYPE.fullmatch(value):
        raise ValueError("not a MIME type like application/pdf")
    return value.lower()


def _file_name(value: str) -> str:
    _single_line(value)
    if not re.fullmatch(_FILE_NAME, value):
        raise ValueError("a file name, without a path")
    return value


# Spelled out rather than left to \s, which Python and the ECMA regexes of JSON Schema read
# differently (Python's includes \x1c-\x1f, ECMA's \ufeff): the document and the check agree.
_UNSUBSCRIBE_TARGET = r"^(?:https://|mailto:)[^\x00-\x20\x7f-\x9f\s\ufeff>]*$"


def _unsubscribe_target(value: str) -> str:
    _single_line(value)
    if not re.fullmatch(_UNSUBSCRIBE_TARGET, value):
        raise ValueError("an https:// URL or a mailto: address")
    return value


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError("content must be base64") from err
    return value


EmailAddress = Annotated[
    str,
    Field(max_length=254, json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN}),
    AfterValidator(_valid_address),
]
SingleLine = Annotated[
    str, Field(json_schema_extra={"pattern": SINGLE_LINE}), AfterValidator(_single_line)
]
DisplayName = Annotated[
    str,
    Field(max_length=200, json_schema_extra={"pattern": SINGLE_LINE}),
    AfterValidator(_single_line),
]
UnsubscribeTarget = Annotated[
    str,
    Field(max_length=2000, json_schema_extra={"pattern": _UNSUBSCRIBE_TARGET}),
    AfterValidator(_unsubscribe_target),
]
Identifier = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH, json_schema_extra={"pattern": NOT_BLANK})
]
Subject = Annotated[
    str,
    Field(min_length=1, max_length=998, json_schema_extra={"pattern": r"^[^\r\n]*\S[^\r\n]*$"}),
    AfterValidator(_single_line),
]
Template = Annotated[str, Field(min_length=1, json_schema_extra={"pattern": NOT_BLANK})]
_MIME_PART = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
# A file name has one visible character at least: not a space, a dot or a control character,
# spelled out (as _UNSUBSCRIBE_TARGET is) so that Python and the document's ECMA regex agree.
_FILE_NAME = r"^[^/\\\r\n]*[^/\\\x00-\x20\x7f-\x9f\s\ufeff.][^/\\\r\n]*$"
_BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_METADATA_KEY = r"^[A-Za-z0-9_.:-]+$"


def _string_map_schema(schema: dict[str, Any]) -> None:
    """Every key matches the pattern and every value is a string (pydantic would write
    patternProperties, which says nothing of keys that do not match)."""
    values = schema.pop("patternProperties", {}).get(_METADATA_KEY, {"type": "string"})
    schema["additionalProperties"] = values
    schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": _METADATA_KEY}


MetadataKey = Annotated[str, Field(min_length=1, max_length=64, pattern=_METADATA_KEY)]


class DeliveryState(enum.StrEnum):
    """A recipient's status (SPEC 9). ``FINAL`` ones never change again."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"  # its campaign was cancelled before it was handed to a provider

    @property
    def succeeded(self) -> bool:
        """Whether a report of this status says ``success: true`` (nothing went wrong yet)."""
        return self in (DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.DELIVERED)


class RecipientIn(RequestModel):
    name: DisplayName | None = None
    mail: EmailAddress
    company: Annotated[str, Field(max_length=200)] | None = None
    emailRecipientId: Identifier | None = None
    params: Params = Field(
        default_factory=dict, description="This recipient's params (over the request's)"
    )


class AttachmentIn(RequestModel):
    filename: Annotated[
        str,
        Field(min_length=1, max_length=255, json_schema_extra={"pattern": _FILE_NAME}),
        AfterValidator(_file_name),
    ]
    content_type: Annotated[
        str,
        Field(json_schema_extra={"pattern": rf"^{_MIME_PART}/{_MIME_PART}$"}),
        AfterValidator(_content_type),
    ]
    content: Annotated[
        str, Field(json_schema_extra={"pattern": _BASE64}), AfterValidator(_base64)
    ] = Field(description="base64")


INLINE_FIELDS = ("subject", "html_template", "text_template")
STORED_FIELDS = ("template_id", "template_version")


def _one_template_source(schema: dict[str, Any]) -> None:
    """State in the document what the model checks: inline templates (``subject`` and
    ``html_template``) or a stored one (``template_id``), never both."""
    schema["oneOf"] = [
        {
            "title": "Inline templates",
            "required": ["subject", "html_template"],
            "properties": {
                "subject": {"type": "string"},
                "html_template": {"type": "string"},
                **{field: {"type": "null"} for field in STORED_FIELDS},
            },
        },
        {
            "title": "A stored template",
            "required": ["template_id"],
            "properties": {
                "template_id": {"type": "string"},
                **{field: {"type": "null"} for field in INLINE_FIELDS},
            },
        },
    ]


class MailFields(RequestModel):
    """Every field of POST /v1/mail but ``recipients`` (a campaign takes the same)."""

    model_config = ConfigDict(json_schema_extra=_one_template_source)

    sender_name: DisplayName | None = None
    sender_email: EmailAddress
    sender_organisation_name: DisplayName | None = None
    subject: Subject | None = Field(default=None, description="Inline templates: required")
    html_template: Template | None = Field(default=None, description="Inline templates: required")
    text_template: str | None = None
    template_id: TemplateId | None = Field(
        default=None,
        description="A stored template (POST /v1/templates) instead of subject/html_template/"
        "text_template",
    )
    template_version: Annotated[int, Field(ge=1, le=2**31 - 1), JSON_INTEGER] | None = Field(
        default=None, description="With template_id; default: its latest"
    )
    params: Params = Field(
        default_factory=dict,
        description="Values of the templates' own placeholders, for every recipient",
    )
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
        default_factory=dict, max_length=20, json_schema_extra=_string_map_schema
    )
    list_unsubscribe: UnsubscribeTarget | None = Field(
        default=None,
        description="https:// URL (one-click, RFC 8058) or mailto: for List-Unsubscribe",
    )

    @model_validator(mode="after")
    def _template_source(self) -> MailFields:
        inline = [f for f in INLINE_FIELDS if getattr(self, f) is not None]
        if self.template_id is not None and inline:
            raise PydanticCustomError(
                "template_source",
                "give template_id or inline templates ({fields}), not both",
                {"fields": ", ".join(inline)},
            )
        if self.template_id is None:
            if self.template_version is not None:
                raise PydanticCustomError("template_source", "template_version needs template_id")
            missing = [f for f in ("subject", "html_template") if getattr(self, f) is None]
            if missing:
                raise PydanticCustomError(
                    "template_source",
                    "give template_id, or subject and html_template (missing: {fields})",
                    {"fields": ", ".join(missing)},
                )
        return self


class SendMailRequest(MailFields):
    """The body of POST /v1/mail."""

    recipients: list[RecipientIn] = Field(
        min_length=1,
        description="Distinct recipients: by emailRecipientId, else by address in any case"
        " (a duplicate is a 422)",
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
    # A stored template's id and version (the content above is that version's), and the
    # values of the templates' own placeholders: the email's, and this recipient's over them.
    template_id: str | None = None
    template_version: int | None = None
    params: dict[str, str] = Field(default_factory=dict)
    recipient_params: dict[str, str] = Field(default_factory=dict)

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


class QueuedData(RootModel[SingleSendData | BulkAcceptedData]):
    """``data`` of a 202: a single recipient queued for retry, or a bulk email."""
