"""MMMS: the Chalice app, its route table and its Lambda entry points.

The routes are declared by group in ``chalicelib/routes/`` (each view parses nothing itself:
it hands the request to a controller) and included here in the order of the OpenAPI
document. Authentication, body limits, CORS and the error envelope are applied by the router
and the middleware (``chalicelib/http``), so every route reads as its contract. The queue
consumers and the scheduled functions stay here: their handler names (``app.<function>``)
are what the packaged template points Lambda at.
"""

from __future__ import annotations

import json
import os
from typing import Any

from chalice.app import Cron, Rate, Response, SQSEvent

from chalicelib.bootstrap import container
from chalicelib.controllers import campaigns, health, queue_consumer
from chalicelib.http.context import RequestContext
from chalicelib.http.cors import configured_allow_list, origin_of_a_live_key
from chalicelib.http.middleware import make_http_middleware
from chalicelib.http.routing import Auth, Router
from chalicelib.http.warmup import WarmableChalice, prime
from chalicelib.routes import api_keys, mail, suppressions, templates, webhooks
from chalicelib.routes import campaigns as campaign_routes

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


# The route table, group by group (each group's module lists its routes and contracts).
router.include(api_keys.routes)
router.include(templates.routes)
router.include(mail.routes)
router.include(suppressions.routes)
router.include(webhooks.routes)
router.include(campaign_routes.routes)


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
