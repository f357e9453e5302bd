"""MMMS routes. Each view parses nothing itself: it hands the request to a controller.

Authentication, body limits, CORS and the error envelope are applied by the router and the
middleware (``chalicelib/http``), so every route here reads as its contract.
"""

from __future__ import annotations

import json
import os
from typing import Any

from chalice.app import Chalice, Cron, Response, SQSEvent

from chalicelib.bootstrap import container
from chalicelib.controllers import api_keys, health, mail, queue_consumer
from chalicelib.http.context import RequestContext
from chalicelib.http.cors import configured_allow_list, origin_of_a_live_key
from chalicelib.http.middleware import make_http_middleware
from chalicelib.http.routing import Auth, Router
from chalicelib.models.api_keys import (
    AddOriginsRequest,
    ApiKeyCreated,
    ApiKeyDeleted,
    CreateApiKeyRequest,
    OriginsAdded,
)
from chalicelib.models.mail import BulkAcceptedData, SendMailRequest, SingleSendData

app = Chalice(app_name="mmms")
app.register_middleware(make_http_middleware(configured_allow_list, origin_of_a_live_key), "http")
router = Router(app, container)


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
    error_statuses=(400, 401, 413, 422, 429, 503),
    extra_responses={
        202: (
            "Queued: two or more recipients (one recipient queued for retry"
            " answers SingleSendData)",
            BulkAcceptedData,
        )
    },
)
def send_mail(ctx: RequestContext) -> Response:
    return mail.send_mail(ctx, container())


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


@app.on_sqs_message(
    queue=os.environ.get("MAIL_QUEUE_NAME", "mmms-email-processing-queue"), batch_size=10
)
def consume_processing_queue(event: SQSEvent) -> dict[str, Any]:
    records = queue_consumer.records_from_sqs_event([r.to_dict() for r in event])
    return queue_consumer.handle_processing_batch(records, container())


@app.schedule(Cron("*/5", "*", "*", "*", "?", "*"))
def sweep_deliveries(event: object) -> None:
    queue_consumer.sweep_deliveries(container())
