"""Campaigns (SPEC 13): POST/GET /v1/campaigns, GET /v1/campaigns/{id}, POST .../cancel; the
uploads queue's handler (S3 notifications) and the minute tick."""

from __future__ import annotations

import logging
import time
from typing import Any

from chalice.app import Response

from chalicelib.bootstrap import Container
from chalicelib.errors import BatchIncompleteError, ServiceUnavailableError
from chalicelib.events.common import MalformedEventError
from chalicelib.events.s3 import parse_s3_notification
from chalicelib.http.context import RequestContext
from chalicelib.http.responses import success
from chalicelib.models.campaigns import (
    CampaignCreated,
    CampaignData,
    CampaignList,
    CampaignsQuery,
    CreateCampaignRequest,
    RowCounts,
    RowError,
    StatusCounts,
    UploadTarget,
)
from chalicelib.queues.base import QueueRecord
from chalicelib.repositories.campaign_table import Campaign

log = logging.getLogger("mmms.campaigns")

# Left for the rest of the Lambda invocation after processing stops (a checkpoint is saved).
SAFETY_SECONDS = 10.0


def create_campaign(ctx: RequestContext, services: Container) -> Response:
    body = ctx.body(CreateCampaignRequest)
    caller = ctx.require_caller()
    # The request's own fields now (sender, cc/bcc, templates, CAPTCHA); each row's address
    # and the quota when the file is read.
    services.send_gate.authorize(
        caller.policy,
        body,
        recipients=[],
        captcha_token=ctx.request.headers.get("x-captcha-token"),
        client_ip=caller.client_ip,
    )
    created = services.campaigns.create(
        caller.key_id, body, test_mode=caller.test_mode, policy=caller.policy
    )
    upload = created.upload
    return success(
        "Campaign created: upload its file",
        CampaignCreated(
            campaign_id=created.campaign.id,
            email_id=created.campaign.email_id,
            status=created.campaign.status,
            upload=UploadTarget(
                method="PUT",
                url=upload.url,
                headers=upload.headers,
                max_bytes=services.campaigns.max_bytes,
                expires_at=upload.expires_at,
            ),
        ),
        status=201,
    )


def list_campaigns(ctx: RequestContext, services: Container) -> Response:
    query = ctx.query(CampaignsQuery)
    page = services.campaigns.page(ctx.require_caller().key_id, query.cursor, query.limit)
    return success(
        "Campaigns",
        CampaignList(campaigns=[_data(c) for c in page.campaigns], next_cursor=page.next_cursor),
    )


def get_campaign(ctx: RequestContext, services: Container, campaign_id: str) -> Response:
    campaign = services.campaigns.get(ctx.require_caller().key_id, campaign_id)
    return success("Campaign", _data(campaign))


def cancel_campaign(ctx: RequestContext, services: Container, campaign_id: str) -> Response:
    campaign = services.campaigns.cancel(ctx.require_caller().key_id, campaign_id)
    return success("Campaign cancelled", _data(campaign))


def _data(campaign: Campaign) -> CampaignData:
    counts = campaign.counts
    return CampaignData(
        campaign_id=campaign.id,
        email_id=campaign.email_id,
        status=campaign.status,
        format="jsonl" if campaign.format == "jsonl" else "csv",
        rows=RowCounts(
            total=campaign.rows_total,
            valid=campaign.rows_total - campaign.rows_invalid,
            invalid=campaign.rows_invalid,
        ),
        counts=StatusCounts(**{k: v for k, v in counts.items() if k in StatusCounts.model_fields}),
        errors=[RowError.model_validate(e) for e in campaign.errors],
        error_count=campaign.error_count,
        send_at=campaign.send_at,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
    )


# --- queue and schedule handlers ----------------------------------------------------------


def handle_uploads_batch(
    records: list[QueueRecord], services: Container, remaining_seconds: float
) -> dict[str, Any]:
    """The uploads queue's handler: each S3 notification starts (or resumes) its campaign's
    processing. A record that meets an outage is retried (the whole batch: processing is
    resumable, so a record already done is only looked at again)."""
    deadline = time.monotonic() + max(1.0, remaining_seconds - SAFETY_SECONDS)
    retry = []
    for record in records:
        try:
            created = parse_s3_notification(record.body)
        except MalformedEventError as err:
            log.error("not an S3 notification", extra={"error": str(err)})
            continue
        for upload in created:
            try:
                services.campaign_processor.uploaded(upload.key, deadline)
            except ServiceUnavailableError as err:
                log.warning("upload processing will be retried", extra={"error": str(err)})
                retry.append(record.message_id)
    if retry:
        raise BatchIncompleteError(f"{len(retry)} upload notifications will be retried")
    return {"batchItemFailures": []}


def tick_campaigns(services: Container, remaining_seconds: float) -> int:
    """The minute tick: due scheduled campaigns, stalled processing, cancellations."""
    deadline = time.monotonic() + max(1.0, remaining_seconds - SAFETY_SECONDS)
    return services.campaigns.tick(deadline)
