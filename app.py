"""MMMS routes. Each view parses nothing itself: it hands the request to a controller.

Authentication, body limits, CORS and the error envelope are applied by the router and the
middleware (``chalicelib/http``), so every route here reads as its contract.
"""

from __future__ import annotations

import json
import os
from typing import Any

from chalice.app import Cron, Response, SQSEvent

from chalicelib.bootstrap import container
from chalicelib.controllers import (
    api_keys,
    health,
    mail,
    queue_consumer,
    status,
    suppressions,
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
    CreateApiKeyRequest,
    OriginsAdded,
)
from chalicelib.models.lifecycle import (
    AddSuppressionsRequest,
    EmailStatusData,
    EmailStatusQuery,
    MailgunWebhook,
    RecipientStatusData,
    SendGridWebhook,
    SuppressionDeleted,
    SuppressionList,
    SuppressionQuery,
    SuppressionsAdded,
    WebhookAccepted,
)
from chalicelib.models.mail import QueuedData, SendMailRequest, SingleSendData

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
        }
    },
    error_statuses=(401, 413, 422, 503),
)
def create_api_key(ctx: RequestContext) -> Response:
    return api_keys.create_api_key(ctx, container())


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
    error_statuses=(401, 404, 413, 422, 503),
)
def add_api_key_origins(ctx: RequestContext, api_key: str) -> Response:
    return api_keys.add_origins(ctx, container(), api_key)


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
    error_statuses=(400, 401, 413, 422, 429, 503),
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
