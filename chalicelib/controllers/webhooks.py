"""Provider webhooks: POST /v1/events/mailgun and /v1/events/sendgrid."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import Container
from chalicelib.http.context import RequestContext
from chalicelib.http.responses import success
from chalicelib.models.lifecycle import WebhookAccepted

# SendGrid's Signed Event Webhook headers (the signature is checked by the webhook service).
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"


def mailgun(ctx: RequestContext, services: Container) -> Response:
    applied = services.webhooks.mailgun(ctx.raw_bytes())
    return success(
        "Events received", WebhookAccepted(received=applied.received, applied=applied.applied)
    )


def sendgrid(ctx: RequestContext, services: Container) -> Response:
    headers = ctx.request.headers
    applied = services.webhooks.sendgrid(
        ctx.raw_bytes(), headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
    )
    return success(
        "Events received", WebhookAccepted(received=applied.received, applied=applied.applied)
    )
