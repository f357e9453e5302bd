"""MMMS routes. Each view parses nothing itself: it hands the request to a controller.

Authentication, body limits, CORS and the error envelope are applied by the router and the
middleware (``chalicelib/http``), so every route here reads as its contract.
"""

from __future__ import annotations

import json
import os
from typing import Any

from chalice.app import Cron, Rate, Response, SQSEvent

from chalicelib.bootstrap import container
from chalicelib.controllers import (
    api_keys,
    campaigns,
    health,
    mail,
    queue_consumer,
    status,
    suppressions,
    templates,
    webhooks,
)
from chalicelib.http.context import RequestContext
from chalicelib.http.cors import configured_allow_list, origin_of_a_live_key
from chalicelib.http.middleware import make_http_middleware
from chalicelib.http.routing import Auth, Router
from chalicelib.http.warmup import WarmableChalice, prime
from chalicelib.models.api_keys import (
    AddOriginsRequest,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyDetails,
    CreateApiKeyRequest,
    OriginsAdded,
    UpdateApiKeyRequest,
)
from chalicelib.models.campaigns import (
    CampaignCreated,
    CampaignData,
    CampaignList,
    CampaignsQuery,
    CreateCampaignRequest,
)
from chalicelib.models.lifecycle import (
    AddSuppressionsRequest,
    EmailStatusData,
    EmailStatusQuery,
    MailgunWebhook,
    PageQuery,
    RecipientStatusData,
    SendGridWebhook,
    SuppressionDeleted,
    SuppressionList,
    SuppressionQuery,
    SuppressionsAdded,
    WebhookAccepted,
)
from chalicelib.models.mail import QueuedData, SendMailRequest, SingleSendData
from chalicelib.models.templates import (
    PreviewRequest,
    TemplateArchived,
    TemplateList,
    TemplateOut,
    TemplatePreview,
    TemplateRequest,
    TemplateVersionQuery,
)

_TEMPLATE_ID = "$response.body#/data/template_id"

app = WarmableChalice(app_name="mmms")  # answers the scheduled warm-up event itself
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
    prime()  # imports only: the SnapStart snapshot then holds what the first request needs
router = Router(app, container)
app.register_middleware(
    make_http_middleware(configured_allow_list, origin_of_a_live_key, router.methods_of), "http"
)


@router.route("/v1/health", "GET", summary="Liveness check", auth=Auth.PUBLIC)
def get_health(ctx: RequestContext) -> Response:
    return health.health()


@router.route(
    "/v1/health/ready",
    "GET",
    summary="Readiness: the database answers",
    auth=Auth.PUBLIC,
    error_statuses=(503,),
)
def get_readiness(ctx: RequestContext) -> Response:
    return health.readiness(container())


@router.route(
    "/v1/api-key",
    "POST",
    summary="Create an API key (shown once)",
    auth=Auth.ADMIN,
    request_model=CreateApiKeyRequest,
    response_model=ApiKeyCreated,
    links={
        200: {
            "AddOrigins": ("add_api_key_origins", {"api_key": "$response.body#/data/key_id"}),
            "DeleteKey": ("delete_api_key", {"api_key": "$response.body#/data/key_id"}),
            "ShowKey": ("get_api_key", {"api_key": "$response.body#/data/key_id"}),
            "UpdateKey": ("update_api_key", {"api_key": "$response.body#/data/key_id"}),
        }
    },
    error_statuses=(401, 413, 422, 503),
)
def create_api_key(ctx: RequestContext) -> Response:
    return api_keys.create_api_key(ctx, container())


@router.route(
    "/v1/api-key/{api_key}",
    "GET",
    summary="An API key's metadata, policy (defaults filled in) and today's recipients",
    auth=Auth.ADMIN,
    response_model=ApiKeyDetails,
    error_statuses=(401, 404, 503),
)
def get_api_key(ctx: RequestContext, api_key: str) -> Response:
    return api_keys.get_api_key(ctx, container(), api_key)


@router.route(
    "/v1/api-key/{api_key}",
    "PATCH",
    summary="Change an API key's policy (and a server key's allowed_ips)",
    auth=Auth.ADMIN,
    request_model=UpdateApiKeyRequest,
    response_model=ApiKeyDetails,
    error_statuses=(401, 404, 409, 413, 422, 503),
)
def update_api_key(ctx: RequestContext, api_key: str) -> Response:
    return api_keys.update_api_key(ctx, container(), api_key)


@router.route(
    "/v1/api-key/{api_key}",
    "DELETE",
    summary="Delete an API key (by key or key_id)",
    auth=Auth.ADMIN,
    response_model=ApiKeyDeleted,
    error_statuses=(401, 404, 503),
)
def delete_api_key(ctx: RequestContext, api_key: str) -> Response:
    return api_keys.delete_api_key(ctx, container(), api_key)


@router.route(
    "/v1/api-key/{api_key}/origins",
    "POST",
    summary="Allow more origins for an API key",
    auth=Auth.ADMIN,
    request_model=AddOriginsRequest,
    response_model=OriginsAdded,
    error_statuses=(401, 404, 409, 413, 422, 503),
)
def add_api_key_origins(ctx: RequestContext, api_key: str) -> Response:
    return api_keys.add_origins(ctx, container(), api_key)


@router.route(
    "/v1/templates",
    "POST",
    summary="Store a template (version 1), checked by rendering its sample_params",
    auth=Auth.ADMIN,
    request_model=TemplateRequest,
    response_model=TemplateOut,
    success_status=201,
    links={
        201: {
            "ShowTemplate": ("get_template", {"template_id": _TEMPLATE_ID}),
            "NewVersion": ("put_template", {"template_id": _TEMPLATE_ID}),
            "PreviewTemplate": ("preview_template", {"template_id": _TEMPLATE_ID}),
            "ArchiveTemplate": ("archive_template", {"template_id": _TEMPLATE_ID}),
        }
    },
    error_statuses=(401, 413, 422, 503),
)
def create_template(ctx: RequestContext) -> Response:
    return templates.create_template(ctx, container())


@router.route(
    "/v1/templates",
    "GET",
    summary="Stored templates, latest versions (paged)",
    auth=Auth.ADMIN,
    query_model=PageQuery,
    response_model=TemplateList,
    error_statuses=(401, 422, 503),
)
def list_templates(ctx: RequestContext) -> Response:
    return templates.list_templates(ctx, container())


@router.route(
    "/v1/templates/{template_id}",
    "GET",
    summary="A stored template (?version=n, default the latest)",
    auth=Auth.ADMIN,
    query_model=TemplateVersionQuery,
    response_model=TemplateOut,
    error_statuses=(401, 404, 422, 503),
)
def get_template(ctx: RequestContext, template_id: str) -> Response:
    return templates.get_template(ctx, container(), template_id)


@router.route(
    "/v1/templates/{template_id}",
    "PUT",
    summary="A new version of a stored template (old versions stay, immutable)",
    auth=Auth.ADMIN,
    request_model=TemplateRequest,
    response_model=TemplateOut,
    error_statuses=(401, 404, 413, 422, 503),
)
def put_template(ctx: RequestContext, template_id: str) -> Response:
    return templates.new_version(ctx, container(), template_id)


@router.route(
    "/v1/templates/{template_id}",
    "DELETE",
    summary="Archive a stored template (new sends get 404; queued mail still renders)",
    auth=Auth.ADMIN,
    response_model=TemplateArchived,
    error_statuses=(401, 404, 503),
)
def archive_template(ctx: RequestContext, template_id: str) -> Response:
    return templates.archive_template(ctx, container(), template_id)


@router.route(
    "/v1/templates/{template_id}/preview",
    "POST",
    summary="Render a stored template (admin, or an API key allowed to use it)",
    auth=Auth.ADMIN_OR_API_KEY,
    request_model=PreviewRequest,
    response_model=TemplatePreview,
    error_statuses=(401, 403, 404, 413, 422, 429, 503),
)
def preview_template(ctx: RequestContext, template_id: str) -> Response:
    return templates.preview_template(ctx, container(), template_id)


@router.route(
    "/v1/mail",
    "POST",
    summary="Send an email to one recipient now, or queue many",
    auth=Auth.API_KEY,
    request_model=SendMailRequest,
    response_model=SingleSendData,
    links={
        200: {
            "EmailStatus": (
                "get_email_status",
                {"email_id": "$response.body#/data/status/email_id"},
            ),
            "RecipientStatus": (
                "get_recipient_status",
                {
                    "email_id": "$response.body#/data/status/email_id",
                    "email_recipient_id": "$response.body#/data/status/email_recipient_id",
                },
            ),
        },
        202: {"EmailStatus": ("get_email_status", {"email_id": "$request.body#/email_id"})},
    },
    error_statuses=(400, 401, 403, 404, 413, 422, 429, 503),
    extra_responses={
        202: (
            "Queued: two or more recipients (BulkAcceptedData), or one recipient queued for"
            " retry (SingleSendData)",
            QueuedData,
        )
    },
)
def send_mail(ctx: RequestContext) -> Response:
    return mail.send_mail(ctx, container())


@router.route(
    "/v1/mail/{email_id}",
    "GET",
    summary="An email's recipients and their statuses (paged)",
    auth=Auth.API_KEY,
    query_model=EmailStatusQuery,
    response_model=EmailStatusData,
    error_statuses=(401, 404, 422, 429, 503),
)
def get_email_status(ctx: RequestContext, email_id: str) -> Response:
    return status.email_status(ctx, container(), email_id)


@router.route(
    "/v1/mail/{email_id}/recipients/{email_recipient_id}",
    "GET",
    summary="One recipient's status and events",
    auth=Auth.API_KEY,
    response_model=RecipientStatusData,
    error_statuses=(401, 404, 429, 503),
)
def get_recipient_status(ctx: RequestContext, email_id: str, email_recipient_id: str) -> Response:
    return status.recipient_status(ctx, container(), email_id, email_recipient_id)


@router.route(
    "/v1/suppressions",
    "GET",
    summary="The suppression list (paged), or one address",
    auth=Auth.ADMIN,
    query_model=SuppressionQuery,
    response_model=SuppressionList,
    error_statuses=(401, 422, 503),
)
def list_suppressions(ctx: RequestContext) -> Response:
    return suppressions.list_suppressions(ctx, container())


@router.route(
    "/v1/suppressions",
    "POST",
    summary="Suppress addresses (reason manual)",
    auth=Auth.ADMIN,
    request_model=AddSuppressionsRequest,
    response_model=SuppressionsAdded,
    links={
        200: {
            "DeleteSuppression": (
                "delete_suppression",
                {"address": "$response.body#/data/added/0/address"},
            )
        }
    },
    error_statuses=(401, 413, 422, 503),
)
def add_suppressions(ctx: RequestContext) -> Response:
    return suppressions.add_suppressions(ctx, container())


@router.route(
    "/v1/suppressions/{address}",
    "DELETE",
    summary="Remove an address from the suppression list",
    auth=Auth.ADMIN,
    response_model=SuppressionDeleted,
    error_statuses=(401, 404, 503),
)
def delete_suppression(ctx: RequestContext, address: str) -> Response:
    return suppressions.delete_suppression(ctx, container(), address)


@router.route(
    "/v1/events/mailgun",
    "POST",
    summary="Mailgun webhook (signed with MAILGUN_WEBHOOK_SIGNING_KEY)",
    auth=Auth.PUBLIC,
    request_model=MailgunWebhook,
    response_model=WebhookAccepted,
    error_statuses=(401, 404, 413, 422, 503),
)
def mailgun_events(ctx: RequestContext) -> Response:
    return webhooks.mailgun(ctx, container())


@router.route(
    "/v1/events/sendgrid",
    "POST",
    summary="SendGrid Event Webhook (signed, SENDGRID_WEBHOOK_PUBLIC_KEY)",
    auth=Auth.PUBLIC,
    request_model=SendGridWebhook,
    response_model=WebhookAccepted,
    error_statuses=(401, 404, 413, 422, 503),
)
def sendgrid_events(ctx: RequestContext) -> Response:
    return webhooks.sendgrid(ctx, container())


# --- campaigns (SPEC 13) ------------------------------------------------------------------

_CAMPAIGN_LINKS = {
    "GetCampaign": ("get_campaign", {"campaign_id": "$response.body#/data/campaign_id"}),
    "CancelCampaign": ("cancel_campaign", {"campaign_id": "$response.body#/data/campaign_id"}),
    "EmailStatus": ("get_email_status", {"email_id": "$response.body#/data/email_id"}),
}


@router.route(
    "/v1/campaigns",
    "POST",
    summary="Create a campaign: an email whose recipients come from an uploaded file",
    auth=Auth.API_KEY,
    request_model=CreateCampaignRequest,
    response_model=CampaignCreated,
    success_status=201,
    links={201: _CAMPAIGN_LINKS},
    error_statuses=(400, 401, 403, 404, 409, 413, 422, 429, 503),
)
def create_campaign(ctx: RequestContext) -> Response:
    return campaigns.create_campaign(ctx, container())


@router.route(
    "/v1/campaigns",
    "GET",
    summary="The key's campaigns, newest first (paged)",
    auth=Auth.API_KEY,
    query_model=CampaignsQuery,
    response_model=CampaignList,
    error_statuses=(401, 422, 429, 503),
)
def list_campaigns(ctx: RequestContext) -> Response:
    return campaigns.list_campaigns(ctx, container())


@router.route(
    "/v1/campaigns/{campaign_id}",
    "GET",
    summary="A campaign's status, row counts, recipients per status and first errors",
    auth=Auth.API_KEY,
    response_model=CampaignData,
    error_statuses=(401, 404, 429, 503),
)
def get_campaign(ctx: RequestContext, campaign_id: str) -> Response:
    return campaigns.get_campaign(ctx, container(), campaign_id)


@router.route(
    "/v1/campaigns/{campaign_id}/cancel",
    "POST",
    summary="Cancel a campaign: rows not yet handed to a provider become cancelled",
    auth=Auth.API_KEY,
    response_model=CampaignData,
    error_statuses=(401, 404, 409, 429, 503),
)
def cancel_campaign(ctx: RequestContext, campaign_id: str) -> Response:
    return campaigns.cancel_campaign(ctx, container(), campaign_id)


@router.route(
    "/v1/openapi.json", "GET", summary="This API's OpenAPI 3.1 document", auth=Auth.PUBLIC
)
def get_openapi(ctx: RequestContext) -> Response:
    from chalicelib.openapi import build_openapi

    return Response(
        body=json.dumps(build_openapi(router.specs)),
        status_code=200,
        headers={"Content-Type": "application/json"},
    )


if os.environ.get("MMMS_DEV_ROUTES") == "1":  # set by `make run` only; never on AWS
    from mmms_local.dev_routes import register_dev_routes

    register_dev_routes(router)

router.finish()


# Instances Lambda may run at once per consumer (SQS ScalingConfig.MaximumConcurrency, 2-1000):
# with the pool size it bounds the database connections the consumers open (README).
CONSUMER_MAX_CONCURRENCY = int(os.environ.get("MAIL_CONSUMER_MAX_CONCURRENCY", "10"))


@app.on_sqs_message(
    queue=os.environ.get("MAIL_QUEUE_NAME", "mmms-email-processing-queue"),
    batch_size=10,
    maximum_concurrency=CONSUMER_MAX_CONCURRENCY,
)
def consume_processing_queue(event: SQSEvent) -> dict[str, Any]:
    records = queue_consumer.records_from_sqs_event([r.to_dict() for r in event])
    return queue_consumer.handle_processing_batch(records, container())


@app.on_sqs_message(
    queue=os.environ.get("MAIL_EVENTS_QUEUE_NAME", "mmms-email-events-queue"),
    batch_size=10,
    maximum_concurrency=CONSUMER_MAX_CONCURRENCY,
)
def consume_events_queue(event: SQSEvent) -> dict[str, Any]:
    records = queue_consumer.records_from_sqs_event([r.to_dict() for r in event])
    return queue_consumer.handle_events_batch(records, container())


@app.schedule(Cron("*/5", "*", "*", "*", "?", "*"))
def sweep_deliveries(event: object) -> None:
    queue_consumer.sweep_deliveries(container())


# Campaign files: the bucket's ObjectCreated notifications arrive on this queue (one at a time:
# processing a file may take most of the invocation, and resumes from its checkpoint).
@app.on_sqs_message(
    queue=os.environ.get("CAMPAIGN_UPLOADS_QUEUE_NAME", "mmms-campaign-uploads-queue"),
    batch_size=1,
)
def consume_uploads_queue(event: SQSEvent) -> dict[str, Any]:
    records = queue_consumer.records_from_sqs_event([r.to_dict() for r in event])
    return campaigns.handle_uploads_batch(records, container(), _remaining_seconds(event))


@app.schedule(Rate(1, unit=Rate.MINUTES))
def tick_campaigns(event: Any) -> None:
    campaigns.tick_campaigns(container(), _remaining_seconds(event))


def _remaining_seconds(event: Any) -> float:
    """What is left of the Lambda invocation (60 s when there is no Lambda context)."""
    context = getattr(event, "context", None)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else 60.0
