"""POST /v1/mail: the seed's responses for a single send (200/202/400) and a bulk send (202)."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import Container
from chalicelib.errors import BusinessRuleError
from chalicelib.http.context import RequestContext
from chalicelib.http.responses import success
from chalicelib.models.mail import BulkAcceptedData, DeliveryState, SendMailRequest, SingleSendData
from chalicelib.services.mail import BulkOutcome, SingleOutcome
from chalicelib.services.messages import status_of


def send_mail(ctx: RequestContext, services: Container) -> Response:
    body = ctx.body(SendMailRequest)
    caller = ctx.require_caller()
    services.send_gate.authorize(
        caller.policy,
        body,
        recipients=[recipient.mail for recipient in body.recipients],
        captcha_token=ctx.request.headers.get("x-captcha-token"),
        client_ip=caller.client_ip,
    )
    outcome = services.mail.submit(
        caller.key_id,
        body,
        test_mode=caller.test_mode,
        daily_quota=caller.policy.daily_recipient_quota,
    )
    if isinstance(outcome, BulkOutcome):
        return _bulk(outcome)
    return _single(outcome)


def _single(outcome: SingleOutcome) -> Response:
    delivery = outcome.outcome.delivery
    status = status_of(delivery)
    if delivery.status is DeliveryState.SUPPRESSED:
        raise BusinessRuleError(
            f"{delivery.recipient} is on the suppression list: the email was not sent",
            details=status.model_dump(mode="json"),
        )
    if delivery.status is DeliveryState.FAILED:
        raise BusinessRuleError(
            f"The email was rejected: {delivery.last_error}",
            details=status.model_dump(mode="json"),
        )
    if delivery.status is DeliveryState.QUEUED:
        return success(
            "Email queued for delivery",
            SingleSendData(message_id=None, ses_response=None, status=status),
            status=202,
        )
    message_id = delivery.message_id or ""
    return success(
        "Email sent successfully",
        SingleSendData(
            message_id=message_id,
            ses_response={"MessageId": message_id},
            status=status,
        ),
    )


def _bulk(outcome: BulkOutcome) -> Response:
    return success(
        "Emails queued for delivery"
        if outcome.newly_queued
        else "Emails already accepted: each recipient's current status",
        BulkAcceptedData(
            email_id=outcome.email_id,
            count=len(outcome.deliveries),
            recipients=[status_of(d) for d in outcome.deliveries],
        ),
        status=202,
    )
