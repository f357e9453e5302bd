"""Status lookup: GET /v1/mail/{email_id} and /v1/mail/{email_id}/recipients/{id}."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import Container
from chalicelib.http.context import RequestContext
from chalicelib.http.responses import success
from chalicelib.models.lifecycle import (
    EmailStatusData,
    EmailStatusQuery,
    RecipientEvent,
    RecipientStatus,
    RecipientStatusData,
)
from chalicelib.repositories.delivery_rows import Delivery
from chalicelib.services.messages import status_of


def email_status(ctx: RequestContext, services: Container, email_id: str) -> Response:
    query = ctx.query(EmailStatusQuery)
    page = services.status.email(
        ctx.require_caller().key_id,
        email_id,
        status=query.status,
        cursor=query.cursor,
        limit=query.limit,
    )
    return success(
        "Email status",
        EmailStatusData(
            email_id=page.email_id,
            count=page.count,
            recipients=[_status(row) for row in page.recipients],
            next_cursor=page.next_cursor,
        ),
    )


def recipient_status(
    ctx: RequestContext, services: Container, email_id: str, email_recipient_id: str
) -> Response:
    history = services.status.recipient(ctx.require_caller().key_id, email_id, email_recipient_id)
    return success(
        "Recipient status",
        RecipientStatusData(
            **_status(history.delivery).model_dump(),
            events=[
                RecipientEvent(type=e.type, at=e.at, provider=e.provider, detail=e.detail)
                for e in history.events
            ],
        ),
    )


def _status(delivery: Delivery) -> RecipientStatus:
    return RecipientStatus(**status_of(delivery).model_dump(), updated_at=delivery.updated_at)
