"""POST /v1/mail: validate everything, then send one recipient now or queue many.

Nothing is sent or queued until every recipient's message has been rendered and every
limit checked. A recipient is identified by (API key, ``email_id``, recipient id); posting
it again sends nothing and answers its current status.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime

from chalicelib.errors import PayloadTooLargeError, QueueUnavailableError, RequestValidationError
from chalicelib.models.mail import ProcessingMessage, SendMailRequest
from chalicelib.queues.base import ProcessingQueue
from chalicelib.repositories.deliveries import Delivery, DeliveryRepository, NewDelivery
from chalicelib.services.delivery import (
    DeliveryOutcome,
    DeliveryService,
    Outcome,
    compiled_templates,
    template_values,
)
from chalicelib.services.templates import TemplateRenderError


@dataclass(frozen=True)
class MailLimits:
    max_recipients: int = 10_000
    max_template_bytes: int = 512 * 1024
    max_attachment_bytes: int = 5 * 1024 * 1024
    max_queue_message_bytes: int = 262_144


@dataclass(frozen=True)
class SingleOutcome:
    """A one-recipient send: what happened now (or, for a repeat, what had happened)."""

    outcome: DeliveryOutcome


@dataclass(frozen=True)
class BulkOutcome:
    email_id: str
    deliveries: list[Delivery]


class MailService:
    def __init__(
        self,
        deliveries: DeliveryRepository,
        delivery: DeliveryService,
        queue: ProcessingQueue,
        limits: MailLimits,
    ) -> None:
        self._repo = deliveries
        self._delivery = delivery
        self._queue = queue
        self._limits = limits

    def submit(
        self, api_key_id: uuid.UUID, request: SendMailRequest
    ) -> SingleOutcome | BulkOutcome:
        self._check_limits(request)
        jobs = self._jobs(api_key_id, request)
        _render_all(jobs)
        for job in jobs[:1]:
            self._check_queue_size(job)
        if len(jobs) == 1:
            return self._send_now(api_key_id, jobs[0])
        return self._enqueue(api_key_id, request.email_id, jobs)

    def _send_now(self, api_key_id: uuid.UUID, job: ProcessingMessage) -> SingleOutcome:
        inserted = self._repo.insert_new(api_key_id, [_new_delivery(job)])
        delivery = self._repo.find(api_key_id, job.email_id, job.recipient_id)
        if job.recipient_id not in inserted:
            return SingleOutcome(DeliveryOutcome(Outcome.DONE, delivery))
        outcome = self._delivery.deliver(job, delivery)
        if outcome.kind is Outcome.RETRY:
            self._enqueue_or_forget([_stamped(job, outcome.delivery)], [outcome.delivery])
        return SingleOutcome(outcome)

    def _enqueue(
        self, api_key_id: uuid.UUID, email_id: str, jobs: list[ProcessingMessage]
    ) -> BulkOutcome:
        inserted = self._repo.insert_new(api_key_id, [_new_delivery(job) for job in jobs])
        records = self._repo.find_many(api_key_id, email_id, [job.recipient_id for job in jobs])
        new_jobs = [job for job in jobs if job.recipient_id in inserted]
        self._enqueue_or_forget(
            [_stamped(job, records[job.recipient_id]) for job in new_jobs],
            [records[job.recipient_id] for job in new_jobs],
        )
        return BulkOutcome(email_id, [records[job.recipient_id] for job in jobs])

    def _enqueue_or_forget(self, jobs: list[ProcessingMessage], records: list[Delivery]) -> None:
        """Queue every job, or forget the records of those that did not reach the queue."""
        if not jobs:
            return
        failed = self._queue.send_many([job.model_dump_json() for job in jobs])
        if failed:
            self._repo.delete_queued([records[index].id for index in failed])
            raise QueueUnavailableError(
                f"{len(failed)} of {len(jobs)} recipients could not be queued and were not"
                " accepted; post the same request again to queue them"
            )

    def _check_limits(self, request: SendMailRequest) -> None:
        limits = self._limits
        if len(request.recipients) > limits.max_recipients:
            raise PayloadTooLargeError(
                f"{len(request.recipients)} recipients; at most {limits.max_recipients} per request"
            )
        template_bytes = sum(
            len(t.encode("utf-8"))
            for t in (request.subject, request.html_template, request.text_template or "")
        )
        if template_bytes > limits.max_template_bytes:
            raise PayloadTooLargeError(
                f"templates are {template_bytes} bytes; at most {limits.max_template_bytes}"
            )
        attachment_bytes = sum(len(base64.b64decode(a.content)) for a in request.attachments)
        if attachment_bytes > limits.max_attachment_bytes:
            raise PayloadTooLargeError(
                f"attachments are {attachment_bytes} bytes; at most {limits.max_attachment_bytes}"
            )

    def _check_queue_size(self, job: ProcessingMessage) -> None:
        """Every message may have to go through the queue (bulk, or a retry): it must fit."""
        size = len(job.model_dump_json().encode("utf-8"))
        if size > self._limits.max_queue_message_bytes:
            raise PayloadTooLargeError(
                f"one recipient's message is {size} bytes; the queue takes at most"
                f" {self._limits.max_queue_message_bytes} (make attachments smaller)"
            )

    @staticmethod
    def _jobs(api_key_id: uuid.UUID, request: SendMailRequest) -> list[ProcessingMessage]:
        jobs = [
            ProcessingMessage(
                email_id=request.email_id,
                email_recipient_id=recipient.emailRecipientId
                or (request.emailRecipientId if len(request.recipients) == 1 else None),
                client_env_id=request.client_env_id,
                sender_email=request.sender_email,
                sender_name=request.sender_name,
                sender_organisation_name=request.sender_organisation_name,
                subject=request.subject,
                html_template=request.html_template,
                text_template=request.text_template,
                recipient_name=recipient.name,
                recipient_email=recipient.mail,
                recipient_company=recipient.company,
                cc=request.cc,
                bcc=request.bcc,
                reply_to=request.reply_to,
                attachments=request.attachments,
                metadata=request.metadata,
                list_unsubscribe=request.list_unsubscribe,
                projectId=request.projectId,
                closureId=request.closureId,
                api_key_id=str(api_key_id),
            )
            for recipient in request.recipients
        ]
        _refuse_duplicates(jobs)
        return jobs


def _refuse_duplicates(jobs: list[ProcessingMessage]) -> None:
    seen: dict[str, int] = {}
    errors = []
    for index, job in enumerate(jobs):
        if job.recipient_id in seen:
            errors.append(
                {
                    "type": "duplicate_recipient",
                    "loc": ["recipients", index],
                    "msg": f"same recipient as recipients[{seen[job.recipient_id]}]"
                    f" ({job.recipient_id}); give each an emailRecipientId",
                    "input": job.recipient_id,
                }
            )
        seen.setdefault(job.recipient_id, index)
    if errors:
        raise RequestValidationError(errors, message="Duplicate recipients")


def _render_all(jobs: list[ProcessingMessage]) -> None:
    """Render every recipient's message; a 422 listing each recipient that fails."""
    first = jobs[0]
    try:
        templates = compiled_templates(first.subject, first.html_template, first.text_template)
    except TemplateRenderError as err:
        raise RequestValidationError(
            [{"type": "template_error", "loc": [err.field], "msg": str(err), "input": None}],
            message="Templates could not be rendered",
        ) from err
    errors = []
    for index, job in enumerate(jobs):
        try:
            templates.render(template_values(job))
        except TemplateRenderError as err:
            errors.append(
                {
                    "type": "template_error",
                    "loc": ["recipients", index],
                    "msg": str(err),
                    "input": None,
                }
            )
    if errors:
        raise RequestValidationError(errors, message="Templates could not be rendered")


def _new_delivery(job: ProcessingMessage) -> NewDelivery:
    return NewDelivery(
        email_id=job.email_id,
        email_recipient_id=job.recipient_id,
        recipient=job.recipient_email,
        client_env_id=job.client_env_id,
        project_id=job.projectId,
        closure_id=job.closureId,
        metadata=job.metadata,
    )


def _stamped(job: ProcessingMessage, delivery: Delivery) -> ProcessingMessage:
    queued_at: datetime = delivery.queued_at
    return job.model_copy(
        update={"queued_at": queued_at, "email_recipient_id": delivery.email_recipient_id}
    )
