"""The providers' signed event webhooks."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import container
from chalicelib.controllers import webhooks
from chalicelib.http.context import RequestContext
from chalicelib.http.routing import Auth, RouteGroup
from chalicelib.models.lifecycle import (
    MailgunWebhook,
    SendGridWebhook,
    WebhookAccepted,
)

routes = RouteGroup()


@routes.route(
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


@routes.route(
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
