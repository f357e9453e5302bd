"""Sending (``POST /v1/mail``) and the status reads of an email and a recipient."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import container
from chalicelib.controllers import (
    mail,
    status,
)
from chalicelib.http.context import RequestContext
from chalicelib.http.routing import Auth, RouteGroup
from chalicelib.models.lifecycle import (
    EmailStatusData,
    EmailStatusQuery,
    RecipientStatusData,
)
from chalicelib.models.mail import QueuedData, SendMailRequest, SingleSendData

routes = RouteGroup()


@routes.route(
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


@routes.route(
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


@routes.route(
    "/v1/mail/{email_id}/recipients/{email_recipient_id}",
    "GET",
    summary="One recipient's status and events",
    auth=Auth.API_KEY,
    response_model=RecipientStatusData,
    error_statuses=(401, 404, 429, 503),
)
def get_recipient_status(ctx: RequestContext, email_id: str, email_recipient_id: str) -> Response:
    return status.recipient_status(ctx, container(), email_id, email_recipient_id)
