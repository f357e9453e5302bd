"""The delivery lifecycle at the edges (SPEC 9): status lookups, events, the suppression list.

Provider events arrive in each provider's own format; their parsers (``chalicelib/events``)
turn them into :class:`ProviderEvent`, the one shape the events service applies.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, StringConstraints

from chalicelib.models.common import NoNulModel, RequestModel, UtcDatetime
from chalicelib.models.mail import DeliveryState, DeliveryStatus, EmailAddress

MAX_PAGE = 1000


class EventKind(enum.StrEnum):
    """What a provider said about a sent message (the ``type`` of a recipient's event)."""

    DELIVERED = "delivered"
    BOUNCED = "bounced"  # permanent (hard) bounce
    SOFT_BOUNCED = "soft_bounced"  # transient bounce: an event, not a status
    COMPLAINED = "complained"
    REJECTED = "rejected"  # the provider refused to send it after accepting it
    DELAYED = "delayed"  # delivery delayed: an event, not a status
    AUTO_REPLY = "auto_reply"  # out-of-office answer: an event, not a status


# The status an event moves a recipient to, and from which statuses. Anything else (a late
# "delivered" after a bounce, a second bounce) is kept in the history but changes nothing.
TRANSITIONS: dict[EventKind, tuple[DeliveryState, frozenset[DeliveryState]]] = {
    EventKind.DELIVERED: (DeliveryState.DELIVERED, frozenset({DeliveryState.SENT})),
    EventKind.BOUNCED: (
        DeliveryState.BOUNCED,
        frozenset({DeliveryState.SENT, DeliveryState.DELIVERED}),
    ),
    EventKind.COMPLAINED: (
        DeliveryState.COMPLAINED,
        frozenset({DeliveryState.SENT, DeliveryState.DELIVERED}),
    ),
    EventKind.REJECTED: (DeliveryState.FAILED, frozenset({DeliveryState.SENT})),
}
# Events that put the address on the suppression list (live keys only), with the reason.
SUPPRESSING: dict[EventKind, Literal["bounce", "complaint"]] = {
    EventKind.BOUNCED: "bounce",
    EventKind.COMPLAINED: "complaint",
}


@dataclass(frozen=True)
class ProviderEvent:
    """One provider event about one sent message, normalised.

    ``recipients`` are the (lower-case) addresses the event concerns; empty means every
    recipient of the message. ``event_key`` identifies the event itself: the same event
    delivered twice has the same key, and is applied once.
    """

    provider: str
    message_id: str
    kind: EventKind
    at: datetime
    event_key: str
    recipients: tuple[str, ...] = ()
    detail: str | None = None


# --- status lookup ---------------------------------------------------------------------


class PageQuery(RequestModel):
    limit: int = Field(default=100, ge=1, le=MAX_PAGE, description=f"At most {MAX_PAGE}")
    # Opaque: taken as given (not stripped), so " m" is as invalid as it looks.
    cursor: (
        Annotated[
            str,
            StringConstraints(
                strip_whitespace=False, min_length=1, max_length=600, pattern=r"^[A-Za-z0-9_-]+$"
            ),
        ]
        | None
    ) = Field(default=None, description="next_cursor of the previous page")


class EmailStatusQuery(PageQuery):
    status: DeliveryState | None = Field(default=None, description="Only recipients in it")


class RecipientStatus(DeliveryStatus):
    """A recipient as the status lookup shows it: the seed's status object + ``updated_at``."""

    updated_at: UtcDatetime | None


class EmailStatusData(BaseModel):
    """``data`` of GET /v1/mail/{email_id}: one page of the email's recipients."""

    email_id: str
    count: int = Field(description="Recipients of the email (matching ``status``), all pages")
    recipients: list[RecipientStatus]
    next_cursor: str | None


class RecipientEvent(BaseModel):
    type: str
    at: UtcDatetime
    provider: str | None
    detail: str | None


class RecipientStatusData(RecipientStatus):
    """``data`` of GET /v1/mail/{email_id}/recipients/{email_recipient_id}."""

    events: list[RecipientEvent] = Field(description="Oldest first")


# --- suppression list ------------------------------------------------------------------

SuppressionReason = Literal["bounce", "complaint", "manual"]


# No address holds a space (quoted local parts are refused), and a query string reads a bare
# "+" as a space, behind API Gateway as locally: ?address=a+b@x.org asks about "a b@x.org".
# Spaces around it are trimmed by the lookup; one inside is a 422 that says so.
LOOKUP_ADDRESS_PATTERN = r"^ *[^ \x00]+ *$"


def _no_inner_space(value: str) -> str:
    if not re.fullmatch(LOOKUP_ADDRESS_PATTERN, value):
        raise ValueError(
            "an address has no spaces: a query string reads + as a space, send + as %2B"
        )
    return value


LookupAddress = Annotated[
    str,
    # Taken as given (the lookup trims and lower-cases it), so the bounds are the schema's.
    StringConstraints(strip_whitespace=False, min_length=1, max_length=320, pattern=r"^[^\x00]+$"),
    Field(json_schema_extra={"pattern": LOOKUP_ADDRESS_PATTERN}),
    AfterValidator(_no_inner_space),
]


class SuppressionQuery(PageQuery):
    address: LookupAddress | None = Field(
        default=None, description="Look up one address (case-insensitive; + as %2B)"
    )


class AddSuppressionsRequest(RequestModel):
    addresses: list[EmailAddress] = Field(min_length=1, max_length=MAX_PAGE)
    reason: Literal["manual"] = "manual"


class SuppressionOut(BaseModel):
    address: str
    reason: SuppressionReason
    email_id: str | None
    detail: str | None
    created_at: UtcDatetime


class SuppressionList(BaseModel):
    suppressions: list[SuppressionOut]
    next_cursor: str | None


class SuppressionsAdded(BaseModel):
    added: list[SuppressionOut] = Field(description="Every address asked for, as now listed")


class SuppressionDeleted(BaseModel):
    deleted: bool
    address: str


# --- webhooks --------------------------------------------------------------------------


class WebhookAccepted(BaseModel):
    received: int = Field(description="Events in the request")
    applied: int = Field(description="Events that matched a recipient and were new")


class MailgunSignature(NoNulModel):
    model_config = ConfigDict(extra="ignore")

    timestamp: Annotated[str, Field(min_length=1, max_length=20)]
    token: Annotated[str, Field(min_length=1, max_length=200)]
    signature: Annotated[str, Field(min_length=1, max_length=200)]


class MailgunWebhook(BaseModel):
    """What Mailgun posts (one event per request); documented here, verified by the service."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    signature: dict[str, str]
    event_data: dict[str, Any] = Field(alias="event-data")


class SendGridWebhook(RootModel[list[dict[str, Any]]]):
    """What SendGrid posts: a batch of events (signed in the headers)."""
