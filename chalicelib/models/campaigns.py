"""Campaigns at the edges (SPEC 13): the create request, the answers, the chunk message.

A campaign is an email (``POST /v1/mail``'s fields without ``recipients``) whose recipients
come from an uploaded CSV or JSONL file.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field, StrictBool

from chalicelib.models.common import UtcDatetime
from chalicelib.models.lifecycle import PageQuery
from chalicelib.models.mail import MailFields

MAX_SCHEDULE_DAYS = 30
MAX_LISTED_ERRORS = 100


class CampaignStatus(enum.StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    VALIDATING = "validating"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    COMPLETED = "completed"  # no row left queued
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.FAILED)


CampaignFormat = Literal["csv", "jsonl"]


def _text_only(value: Any) -> Any:
    """A date-time as JSON writes it: a string (not a number of seconds)."""
    if not isinstance(value, str):
        raise ValueError("a date-time string like 2030-01-31T09:00:00Z")
    return value


class CreateCampaignRequest(MailFields):
    """The body of POST /v1/campaigns."""

    format: CampaignFormat = Field(default="csv", description="The file's format")
    send_at: Annotated[AwareDatetime, BeforeValidator(_text_only)] | None = Field(
        default=None,
        description=f"At most {MAX_SCHEDULE_DAYS} days ahead. Rows are queued within a minute"
        " of it (default: as soon as the file is validated)",
    )
    skip_invalid: StrictBool = Field(
        default=False,
        description="Skip (and list) invalid rows instead of failing the whole file",
    )


class UploadTarget(BaseModel):
    """Where and how to send the file (once, before ``expires_at``)."""

    method: Literal["PUT"]
    url: str
    headers: dict[str, str]
    max_bytes: int
    expires_at: UtcDatetime


class CampaignCreated(BaseModel):
    """``data`` of POST /v1/campaigns (201)."""

    campaign_id: str
    email_id: str
    status: CampaignStatus
    upload: UploadTarget


class RowError(BaseModel):
    """An invalid row: its line in the file (the header is line 1)."""

    line: int
    email_recipient_id: str | None
    field: str
    message: str


class RowCounts(BaseModel):
    total: int
    valid: int
    invalid: int


class StatusCounts(BaseModel):
    """Recipients per status."""

    queued: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    failed: int = 0
    suppressed: int = 0
    cancelled: int = 0


class CampaignData(BaseModel):
    """``data`` of GET /v1/campaigns/{campaign_id} (and of a cancel)."""

    campaign_id: str
    email_id: str
    status: CampaignStatus
    format: CampaignFormat
    rows: RowCounts
    counts: StatusCounts
    errors: list[RowError] = Field(description=f"The first {MAX_LISTED_ERRORS}, in line order")
    error_count: int
    send_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class CampaignList(BaseModel):
    """``data`` of GET /v1/campaigns: the key's campaigns, newest first."""

    campaigns: list[CampaignData]
    next_cursor: str | None


class CampaignsQuery(PageQuery):
    limit: Annotated[int, Field(ge=1, le=100, description="At most 100")] = 20


class CampaignChunk(BaseModel):
    """A processing-queue message that stands for a campaign's rows ``first_line`` to
    ``last_line`` (recipients recorded already; the consumer sends each one it can lease)."""

    campaign_id: str
    first_line: int
    last_line: int


CHUNK_KEY = "mmms_campaign_chunk"
