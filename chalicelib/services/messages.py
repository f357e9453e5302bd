"""Building a recipient's email and its row: shared by accepting (``mail``), sending
(``delivery``) and campaigns.

- the row to record for a job (``new_delivery``) and the row's identity (``job_key``);
- what the recipients of an email share, stored once (``email_content``), and a recipient's
  job rebuilt from it and its row (``job_from_content``: the sweep, a replay, campaigns);
- the rendered message (``render_message``: compiled templates cached per process, the
  values every template may use), then its Message-ID from the row (``with_message_id``),
  so rendering can run while the row is being leased;
- a *receipt*: a processing-queue message recording a send whose database write had to
  wait (``receipt_body``, ``RECEIPT_KEY``);
- what a row looks like to a client (``status_of``) and on the result queue (``result_of``).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import uuid
from typing import Any

from chalicelib.models.mail import DeliveryStatus, ProcessingMessage, ProcessingResult
from chalicelib.providers.base import Address, Attachment, OutgoingMessage, SendResult
from chalicelib.repositories.delivery_rows import Delivery, JobKey, NewDelivery
from chalicelib.services.render_budget import RenderMeter
from chalicelib.services.templates import CompiledTemplates


def job_key(job: ProcessingMessage) -> JobKey:
    """The identity of the job's recipient row."""
    return (api_key_uuid(job.api_key_id), job.email_id, job.recipient_id)


def api_key_uuid(value: str | None) -> uuid.UUID | None:
    """A message's ``api_key_id`` as a key id; None when absent or not one (outside producers)."""
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def new_delivery(
    job: ProcessingMessage,
    *,
    dispatched: bool = False,
    test_mode: bool = False,
    suppressed: str | None = None,
) -> NewDelivery:
    """The row to record for a job (``suppressed``: recorded as such, with this detail)."""
    return NewDelivery(
        email_id=job.email_id,
        email_recipient_id=job.recipient_id,
        recipient=job.recipient_email,
        client_env_id=job.client_env_id,
        project_id=job.projectId,
        closure_id=job.closureId,
        metadata=job.metadata,
        recipient_name=job.recipient_name,
        recipient_company=job.recipient_company,
        queued_at=job.queued_at,
        dispatched=dispatched,
        test_mode=test_mode,
        suppressed=suppressed,
        template_id=job.template_id,
        template_version=job.template_version,
        recipient_params=job.recipient_params,
    )


# What a recipient's message adds to its email's stored content.
RECIPIENT_FIELDS = frozenset(
    {
        "email_recipient_id",
        "recipient_name",
        "recipient_email",
        "recipient_company",
        "recipient_params",
        "queued_at",
    }
)


def email_content(job: ProcessingMessage) -> dict[str, Any]:
    """What all recipients of ``job``'s email share (stored once per email)."""
    return job.model_dump(mode="json", exclude=set(RECIPIENT_FIELDS))


def job_from_content(content: dict[str, Any], row: Delivery) -> ProcessingMessage:
    """A recipient's processing message, rebuilt from its email's content and its record."""
    return ProcessingMessage.model_validate(
        {
            **content,
            "email_recipient_id": row.email_recipient_id,
            "recipient_email": row.recipient,
            "recipient_name": row.recipient_name,
            "recipient_company": row.recipient_company,
            "recipient_params": row.recipient_params or {},
            "queued_at": row.queued_at,
        }
    )


RECEIPT_KEY = "mmms_receipt"
RECEIPT_RETRY_SECONDS = 5


def receipt_body(delivery_id: uuid.UUID, result: SendResult) -> str:
    """A processing-queue message that records a send (not an email to send)."""
    return json.dumps(
        {
            RECEIPT_KEY: {
                "delivery_id": str(delivery_id),
                "provider": result.provider,
                "message_id": result.message_id,
            }
        }
    )


@functools.lru_cache(maxsize=64)
def compiled_templates(subject: str, html: str, text: str | None) -> CompiledTemplates:
    """Compile an email's templates once per process, not once per recipient."""
    return CompiledTemplates(subject, html, text)


def template_values(job: ProcessingMessage) -> dict[str, str | None]:
    return {
        "name": job.recipient_name,
        "mail": job.recipient_email,
        "company": job.recipient_company,
        "emailRecipientId": job.email_recipient_id,
        "sender_name": job.sender_name,
        "sender_email": job.sender_email,
        "sender_organisation_name": job.sender_organisation_name,
    }


def template_params(job: ProcessingMessage) -> dict[str, str]:
    """The values of the templates' own placeholders: the email's, the recipient's over them."""
    return {**job.params, **job.recipient_params}


def render_message(job: ProcessingMessage, meter: RenderMeter | None = None) -> OutgoingMessage:
    """The recipient's rendered email without its Message-ID, which needs the recipient's row
    (see :func:`with_message_id`); so it can be rendered while the row is being leased."""
    rendered = compiled_templates(job.subject, job.html_template, job.text_template).render(
        template_values(job), meter, template_params(job)
    )
    return OutgoingMessage(
        sender=Address(job.sender_email, job.sender_name),
        to=(Address(job.recipient_email, job.recipient_name),),
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        cc=tuple(Address(a) for a in job.cc),
        bcc=tuple(Address(a) for a in job.bcc),
        reply_to=(Address(job.reply_to),) if job.reply_to else (),
        attachments=tuple(
            Attachment(a.filename, a.content_type, base64.b64decode(a.content))
            for a in job.attachments
        ),
        headers=unsubscribe_headers(job.list_unsubscribe),
        tags={
            "email_id": job.email_id,
            "email_recipient_id": job.recipient_id,
            **({"client_env_id": job.client_env_id} if job.client_env_id else {}),
        },
    )


def with_message_id(
    message: OutgoingMessage, job: ProcessingMessage, delivery: Delivery
) -> OutgoingMessage:
    """The same Message-ID whichever attempt or provider sends it: the row's."""
    domain = job.sender_email.rpartition("@")[2]
    return dataclasses.replace(message, message_id=f"<{delivery.id}@{domain}>")


def unsubscribe_headers(target: str | None) -> dict[str, str]:
    """RFC 2369 List-Unsubscribe, plus RFC 8058 one-click for an https target."""
    if not target:
        return {}
    headers = {"List-Unsubscribe": f"<{target}>"}
    if target.startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def status_of(delivery: Delivery) -> DeliveryStatus:
    return DeliveryStatus(
        email_id=delivery.email_id,
        email_recipient_id=delivery.email_recipient_id,
        recipient=delivery.recipient,
        status=delivery.status,
        message_id=delivery.message_id,
        status_detail=delivery.status_detail,
        last_error=delivery.last_error,
        queued_at=delivery.queued_at,
        sent_at=delivery.sent_at,
        provider=delivery.provider,
    )


def result_of(delivery: Delivery) -> ProcessingResult:
    return ProcessingResult(
        success=delivery.status.succeeded,
        email_id=delivery.email_id,
        email_recipient_id=delivery.email_recipient_id,
        recipient=delivery.recipient,
        status=delivery.status,
        result=status_of(delivery),
        client_env_id=delivery.client_env_id,
        projectId=delivery.project_id,
        closureId=delivery.closure_id,
        metadata=delivery.metadata,
    )
