"""Campaigns (SPEC 13): create one, read its status, list a key's, cancel one; expand the
chunk messages its fan-out queued; the minute tick.

Creating a campaign validates its email like ``POST /v1/mail`` does (limits, templates
compiled and rendered once), stores the email's content, and answers where to upload the
file. The file is processed by :class:`~chalicelib.services.campaign_processing.
CampaignProcessor` once the upload store says it arrived.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib.errors import (
    BusinessRuleError,
    ConflictError,
    NotFoundError,
    RequestValidationError,
    ServiceUnavailableError,
)
from chalicelib.models.campaigns import (
    MAX_SCHEDULE_DAYS,
    CampaignChunk,
    CampaignStatus,
    CreateCampaignRequest,
)
from chalicelib.models.mail import ProcessingMessage
from chalicelib.repositories.campaign_table import Campaign, RowPolicy
from chalicelib.repositories.campaigns import CampaignRepository
from chalicelib.repositories.deliveries import DeliveryRepository
from chalicelib.services.campaign_processing import CampaignProcessor
from chalicelib.services.key_policy import KeyPolicy
from chalicelib.services.mail import MailLimits, MailService, check_content_limits
from chalicelib.services.mail_jobs import check_templates, email_fields
from chalicelib.services.messages import email_content, job_from_content
from chalicelib.services.paging import decode_cursor, encode_cursor
from chalicelib.services.render_budget import RenderMeter
from chalicelib.uploads.base import UploadStore, UploadTarget

log = logging.getLogger("mmms.campaigns")

CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
CANCEL_BUDGET_SECONDS = 2.0  # rows of a cancel settled in the request; the tick does the rest
# How long a cancel waits for the rows senders hold to be sent (within API Gateway's 29 s).
CANCEL_WAIT_SECONDS = 20.0
CANCEL_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class CampaignLimits:
    max_bytes: int
    upload_expires_seconds: int


@dataclass(frozen=True)
class CreatedCampaign:
    campaign: Campaign
    upload: UploadTarget


@dataclass(frozen=True)
class CampaignPage:
    campaigns: list[Campaign]
    next_cursor: str | None


class CampaignService:
    def __init__(
        self,
        campaigns: CampaignRepository,
        deliveries: DeliveryRepository,
        mail: MailService,
        processor: CampaignProcessor,
        *,
        store: UploadStore | None,
        mail_limits: MailLimits,
        limits: CampaignLimits,
    ) -> None:
        self._repo = campaigns
        self._deliveries = deliveries
        self._mail = mail
        self._processor = processor
        self._store = store
        self._mail_limits = mail_limits
        self._limits = limits

    @property
    def max_bytes(self) -> int:
        return self._limits.max_bytes

    def create(
        self,
        api_key_id: uuid.UUID,
        request: CreateCampaignRequest,
        *,
        test_mode: bool = False,
        policy: KeyPolicy | None = None,
    ) -> CreatedCampaign:
        """A campaign awaiting its file, and where to upload it. Posting the same request
        again (same ``email_id`` and content) answers the same campaign while it still
        awaits its file; once its file arrived, that is a 409. ``policy``: what the key's
        policy asks of each row (held with the campaign: rows are read later)."""
        store = self._require_store()
        self._check_send_at(request.send_at)
        check_content_limits(request, self._mail_limits)
        now = datetime.now(UTC)
        source = self._mail.template_source(api_key_id, request)
        sample = ProcessingMessage.model_construct(
            **email_fields(api_key_id, request, now, source),
            email_recipient_id="sample",
            recipient_email=request.sender_email,
            recipient_name="Sample Recipient",
            recipient_company="Sample Company",
        )
        check_templates(sample, RenderMeter(self._mail_limits.render))
        self._mail.keep_content(api_key_id, request.email_id, email_content(sample))
        campaign = self._repo.create(
            api_key_id=api_key_id,
            email_id=request.email_id,
            fmt=request.format,
            skip_invalid=request.skip_invalid,
            send_at=request.send_at,
            test_mode=test_mode,
            policy=RowPolicy(policy.allowed_recipient_domains, policy.daily_recipient_quota)
            if policy is not None
            else RowPolicy(),
        ) or self._existing(api_key_id, request)
        upload = store.upload_target(
            campaign.upload_key,
            CONTENT_TYPES[campaign.format],
            self._limits.upload_expires_seconds,
        )
        return CreatedCampaign(campaign, upload)

    def _existing(self, api_key_id: uuid.UUID, request: CreateCampaignRequest) -> Campaign:
        campaign = self._repo.by_email(api_key_id, request.email_id)
        if campaign is None:  # pragma: no cover - the insert conflicted with it
            raise ServiceUnavailableError("the campaign could not be created; try again")
        same = (campaign.format, campaign.skip_invalid, campaign.send_at) == (
            request.format,
            request.skip_invalid,
            request.send_at,
        )
        if not same:
            raise BusinessRuleError(
                f"email_id {request.email_id!r} already names a campaign with other settings"
                " (format, send_at, skip_invalid); use a new email_id",
                details={"email_id": request.email_id, "campaign_id": campaign.id},
            )
        if campaign.status is not CampaignStatus.AWAITING_UPLOAD:
            raise ConflictError(
                f"campaign {campaign.id} of email_id {request.email_id!r} already has its file"
                f" ({campaign.status.value}); use a new email_id",
                details={"campaign_id": campaign.id, "status": campaign.status.value},
            )
        return campaign

    def upload_refusal(self, key: str) -> tuple[int, str] | None:
        """Why a file may not be uploaded under ``key`` now (404: no campaign; 409: it has
        its file already), or None. The local upload server asks (S3 cannot)."""
        campaign = self._repo.by_upload_key(key)
        if campaign is None:
            return (404, f"no campaign awaits an upload at {key}")
        if campaign.status is not CampaignStatus.AWAITING_UPLOAD:
            return (409, f"campaign {campaign.id} is {campaign.status.value}: already uploaded")
        return None

    def get(self, api_key_id: uuid.UUID, campaign_id: str) -> Campaign:
        """The campaign with its counts (one aggregate read); ``completed`` once no row is
        left queued."""
        campaign = self._repo.get(campaign_id, api_key_id)
        if campaign is None:
            raise NotFoundError(f"No campaign {campaign_id!r} for this API key")
        return self._completed_if_done(campaign)

    def page(self, api_key_id: uuid.UUID, cursor: str | None, limit: int) -> CampaignPage:
        before = decode_cursor(cursor)
        before_seq = int(before) if before and before.isdigit() else None
        rows = self._repo.page(api_key_id, before_seq, limit + 1)
        campaigns = [self._completed_if_done(c) for c in rows[:limit]]
        cursor_out = encode_cursor(str(rows[limit - 1].seq)) if len(rows) > limit else None
        return CampaignPage(campaigns, cursor_out)

    def cancel(self, api_key_id: uuid.UUID, campaign_id: str) -> Campaign:
        """Cancel a campaign that has not finished (409 otherwise). Its rows not yet handed
        to a provider become ``cancelled``, each reported once: those this request has
        time for now, the rest by the tick within a minute (none is sent meanwhile).

        From the cancel's commit on no row of it is leased for sending; the answer waits
        (up to ``CANCEL_WAIT_SECONDS``) for the rows senders already held to be sent, so
        nothing of the campaign is sent after it."""
        campaign = self.get(api_key_id, campaign_id)
        if campaign.status.finished or not self._repo.cancel(campaign_id, api_key_id):
            current = self.get(api_key_id, campaign_id)
            raise ConflictError(
                f"campaign {campaign_id} is {current.status.value}: it cannot be cancelled",
                details={"campaign_id": campaign_id, "status": current.status.value},
            )
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while self._repo.held(campaign_id) and time.monotonic() < deadline:
            time.sleep(CANCEL_POLL_SECONDS)
        self._processor.process(campaign_id, time.monotonic() + CANCEL_BUDGET_SECONDS)
        return self.get(api_key_id, campaign_id)

    def _completed_if_done(self, campaign: Campaign) -> Campaign:
        done = (
            campaign.status is CampaignStatus.SENDING
            and campaign.fanned_out
            and not campaign.counts.get("queued")
        )
        if done and self._repo.complete_if_done(campaign.id):
            return self._repo.get(campaign.id) or campaign
        return campaign

    def _check_send_at(self, send_at: datetime | None) -> None:
        if send_at is None:
            return
        latest = datetime.now(UTC) + timedelta(days=MAX_SCHEDULE_DAYS)
        if send_at > latest:
            raise RequestValidationError(
                [
                    {
                        "type": "send_at",
                        "loc": ["send_at"],
                        "msg": f"at most {MAX_SCHEDULE_DAYS} days ahead",
                        "input": None,
                    }
                ],
                message=f"send_at is more than {MAX_SCHEDULE_DAYS} days ahead",
            )

    def _require_store(self) -> UploadStore:
        if self._store is None:
            raise ServiceUnavailableError(
                "campaigns need an upload store: set CAMPAIGN_BUCKET (see README, Campaigns)"
            )
        return self._store

    # --- the consumer's side: chunks ----------------------------------------------------

    def chunk_jobs(self, chunks: list[CampaignChunk]) -> list[list[ProcessingMessage]]:
        """Each chunk's recipients still queued, as processing messages (one statement for
        all chunks, plus the emails' stored content)."""
        rows = self._repo.chunk_rows([(c.campaign_id, c.first_line, c.last_line) for c in chunks])
        contents: dict[str, dict[str, object]] = {}
        jobs: list[list[ProcessingMessage]] = [[] for _ in chunks]
        for row in rows:
            content = contents.get(row.campaign_id)
            if content is None:
                found = self._deliveries.email_content(
                    row.delivery.api_key_id, row.delivery.email_id
                )
                content = contents[row.campaign_id] = dict(found or {})
            jobs[row.chunk].append(job_from_content(dict(content), row.delivery))
        return jobs

    # --- the minute tick -----------------------------------------------------------------

    def tick(self, deadline: float, limit: int = 50) -> int:
        """Start due scheduled campaigns, resume stalled processing, settle cancellations;
        how many campaigns were looked at."""
        due = self._repo.due(limit)
        for campaign_id in due:
            if time.monotonic() >= deadline:
                break
            self._processor.process(campaign_id, deadline)
        return len(due)
