"""POST /v1/mail: validate everything, then send one recipient now or queue many.

Nothing is sent, queued or recorded until every recipient's message has been rendered and
every limit checked (each queue message sized as it will be sent). A recipient is identified
by (API key, ``email_id``, recipient id); posting it again sends nothing and answers its
current status, and puts it on the queue again if its message never got there.

The email's content is stored once (``emails``), so a recipient whose message never reached
the queue can be queued again later without the client's request (``RecoveryService``).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from chalicelib.errors import (
    BusinessRuleError,
    PayloadTooLargeError,
    QueueUnavailableError,
    RateLimitedError,
)
from chalicelib.models.mail import DeliveryState, MailFields, ProcessingMessage, SendMailRequest
from chalicelib.queues.base import ProcessingQueue
from chalicelib.repositories.deliveries import DailyCharge, DeliveryRepository, QuotaExceeded
from chalicelib.repositories.delivery_rows import Delivery, NewDelivery
from chalicelib.repositories.suppressions import Suppression
from chalicelib.services.api_keys import seconds_until_utc_midnight
from chalicelib.services.delivery import DeliveryOutcome, DeliveryService, Outcome
from chalicelib.services.mail_jobs import TemplateSource, build_jobs, render_all
from chalicelib.services.messages import email_content, job_from_content, new_delivery
from chalicelib.services.render_budget import RenderBudget, RenderMeter
from chalicelib.services.stored_templates import StoredTemplateService
from chalicelib.services.suppressions import SuppressionService, suppression_detail


@dataclass(frozen=True)
class MailLimits:
    """The request limits; built from the settings, which hold the defaults (one source)."""

    max_recipients: int
    max_template_bytes: int
    max_attachment_bytes: int
    max_queue_message_bytes: int
    max_request_queue_bytes: int
    redispatch_after_seconds: float
    render: RenderBudget


@dataclass(frozen=True)
class SingleOutcome:
    """A one-recipient send: what happened now (or, for a repeat, what had happened)."""

    outcome: DeliveryOutcome


@dataclass(frozen=True)
class BulkOutcome:
    email_id: str
    deliveries: list[Delivery]
    newly_queued: int


@dataclass(frozen=True)
class Prepared:
    """One recipient, ready: its message and that message's queue body."""

    job: ProcessingMessage
    body: str


class MailService:
    def __init__(
        self,
        deliveries: DeliveryRepository,
        delivery: DeliveryService,
        queue: ProcessingQueue,
        limits: MailLimits,
        suppressions: SuppressionService,
        *,
        templates: StoredTemplateService | None = None,
    ) -> None:
        self._repo = deliveries
        self._delivery = delivery
        self._queue = queue
        self._limits = limits
        self._suppressions = suppressions
        self._templates = templates

    def submit(
        self,
        api_key_id: uuid.UUID,
        request: SendMailRequest,
        *,
        test_mode: bool = False,
        daily_quota: int | None = None,
    ) -> SingleOutcome | BulkOutcome:
        """Send or queue ``request``. A test key's recipients only reach the simulator.

        The recipients recorded now count against the key's recipients of the day, within
        ``daily_quota`` (429, nothing recorded, when they would pass it)."""
        self._check_limits(request)
        source = self.template_source(api_key_id, request)
        jobs = build_jobs(api_key_id, request, datetime.now(UTC), source)
        # Sized before rendering: the queue limits also bound how much rendering a request asks.
        prepared = [Prepared(job, job.model_dump_json()) for job in jobs]
        self._check_queue_sizes(prepared)
        render_all(jobs, RenderMeter(self._limits.render))
        stored = self.keep_content(api_key_id, request.email_id, email_content(jobs[0]))
        listed = self._suppressions.listed([job.recipient_email for job in jobs])
        rows = [
            new_delivery(
                job,
                test_mode=test_mode,
                suppressed=_why_suppressed(listed, job.recipient_email),
            )
            for job in jobs
        ]
        charge = DailyCharge(api_key_id, daily_quota)
        if len(prepared) == 1:
            return self._send_now(api_key_id, prepared[0], rows[0], stored, charge)
        return self._enqueue(api_key_id, request.email_id, prepared, rows, stored, charge=charge)

    def template_source(self, api_key_id: uuid.UUID, request: MailFields) -> TemplateSource:
        """The templates to render: inline, or the stored template's version. An email
        already accepted from a stored template keeps the version it was accepted with (a
        replay after a new version or an archive answers its status, it is not refused)."""
        if request.template_id is None or self._templates is None:
            return TemplateSource.inline(request)
        accepted = self._repo.email_content(api_key_id, request.email_id)
        if (
            accepted is not None
            and accepted.get("template_id") == request.template_id
            and request.template_version in (None, accepted.get("template_version"))
        ):
            return TemplateSource(
                subject=str(accepted.get("subject", "")),
                html=str(accepted.get("html_template", "")),
                text=accepted.get("text_template"),
                template_id=request.template_id,
                version=accepted.get("template_version"),
            )
        found = self._templates.get(request.template_id, request.template_version)
        content = found.content
        return TemplateSource(
            subject=content.subject,
            html=content.html,
            text=content.text,
            template_id=found.template_id,
            version=found.version,
        )

    def _insert(
        self, api_key_id: uuid.UUID, rows: list[NewDelivery], charge: DailyCharge
    ) -> dict[str, Delivery]:
        try:
            return self._repo.insert_new(api_key_id, rows, charge=charge)
        except QuotaExceeded as err:
            raise RateLimitedError(
                f"This key's daily recipient quota ({err.quota}) would be passed: nothing was"
                " sent or recorded; it resets at 00:00 UTC",
                retry_after_seconds=seconds_until_utc_midnight(),
            ) from err

    def _send_now(
        self,
        api_key_id: uuid.UUID,
        item: Prepared,
        row: NewDelivery,
        stored: dict[str, Any],
        charge: DailyCharge,
    ) -> SingleOutcome:
        job = item.job
        inserted = self._insert(api_key_id, [row], charge)
        if job.recipient_id not in inserted:
            current = self._repo.find(api_key_id, job.email_id, job.recipient_id)
            self._dispatch_stale([current], stored)
            return SingleOutcome(DeliveryOutcome(Outcome.DONE, current))
        recorded = inserted[job.recipient_id]
        if recorded.status is DeliveryState.SUPPRESSED:
            self._delivery.flush_result(recorded)
            return SingleOutcome(DeliveryOutcome(Outcome.SUPPRESSED, recorded))
        outcome = self._delivery.deliver(job)
        if outcome.kind is Outcome.RETRY:
            self._queue_or_explain([outcome.delivery], [item.body])
        return SingleOutcome(outcome)

    def _enqueue(
        self,
        api_key_id: uuid.UUID,
        email_id: str,
        items: list[Prepared],
        rows: list[NewDelivery],
        stored: dict[str, Any],
        *,
        charge: DailyCharge,
    ) -> BulkOutcome:
        rids = [item.job.recipient_id for item in items]
        inserted = self._insert(api_key_id, rows, charge)
        existing = [rid for rid in rids if rid not in inserted]
        records = {**self._repo.find_many(api_key_id, email_id, existing), **inserted}
        self._dispatch_stale([records[rid] for rid in existing], stored)
        for row in inserted.values():
            if row.status is DeliveryState.SUPPRESSED:
                self._delivery.flush_result(row)
        new_items = [
            item
            for item in items
            if item.job.recipient_id in inserted
            and inserted[item.job.recipient_id].status is DeliveryState.QUEUED
        ]
        self._queue_or_explain(
            [records[item.job.recipient_id] for item in new_items],
            [item.body for item in new_items],
        )
        return BulkOutcome(email_id, [records[rid] for rid in rids], len(new_items))

    def _queue_or_explain(self, rows: list[Delivery], bodies: list[str]) -> None:
        """Queue these recipients' messages and mark them dispatched.

        What the queue does not take stays recorded and undispatched: it is queued again by a
        replay or by the sweep once the queue is back, so nothing is lost, and nothing is
        deleted (a replay may already have answered for it). The caller hears 503.
        """
        if not bodies:
            return
        failed = set(self._queue.send_many(bodies))
        self._repo.mark_dispatched([row.id for i, row in enumerate(rows) if i not in failed])
        if failed:
            raise QueueUnavailableError(
                f"The queue is unreachable: {len(failed)} of {len(bodies)} recipients are"
                " recorded but not queued yet; they are queued automatically when it is back"
                " (posting the same request again is safe)"
            )

    def keep_content(
        self, api_key_id: uuid.UUID, email_id: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        """Store the email's content and return what is stored for it.

        An ``email_id`` already used for other content is a 400. Both sides are compared
        through today's model, so content stored by an earlier release (a field added since,
        a normalisation changed) still matches a faithful replay.
        """
        stored = self._repo.save_email(api_key_id, email_id, content)
        before = _normalized(stored)
        if before is not None and before != _normalized(content):
            raise BusinessRuleError(
                f"email_id {email_id!r} was already used for a different email (subject,"
                " templates, sender, attachments or options differ); use a new email_id",
                details={"email_id": email_id},
            )
        return stored

    def _dispatch_stale(self, rows: list[Delivery], stored: dict[str, Any]) -> None:
        """Queue again the recorded recipients whose message never reached the queue.

        Their messages are rebuilt from what is recorded (the stored content and each row),
        like the sweep does, not from the replayed request.
        """
        cutoff = datetime.now(UTC) - timedelta(seconds=self._limits.redispatch_after_seconds)
        stale = [
            row
            for row in rows
            if row.status is DeliveryState.QUEUED
            and row.dispatched_at is None
            and row.queued_at < cutoff
        ]
        if not stale:
            return
        bodies = [job_from_content(stored, row).model_dump_json() for row in stale]
        failed = set(self._queue.send_many(bodies))
        self._repo.mark_dispatched([row.id for i, row in enumerate(stale) if i not in failed])

    def _check_limits(self, request: SendMailRequest) -> None:
        limits = self._limits
        if len(request.recipients) > limits.max_recipients:
            raise PayloadTooLargeError(
                f"{len(request.recipients)} recipients; at most {limits.max_recipients} per request"
            )
        check_content_limits(request, limits)

    def _check_queue_sizes(self, items: list[Prepared]) -> None:
        """Every message may go through the queue (bulk, or a retry): each must fit, and all."""
        sizes = [len(item.body.encode("utf-8")) for item in items]
        largest = max(sizes)
        if largest > self._limits.max_queue_message_bytes:
            raise PayloadTooLargeError(
                f"a recipient's message is {largest} bytes; the queue takes at most"
                f" {self._limits.max_queue_message_bytes} (make attachments smaller)"
            )
        if sum(sizes) > self._limits.max_request_queue_bytes:
            raise PayloadTooLargeError(
                f"the request would queue {sum(sizes)} bytes; at most"
                f" {self._limits.max_request_queue_bytes} (fewer recipients or attachments)"
            )


def check_content_limits(request: MailFields, limits: MailLimits) -> None:
    """The email's inline templates and attachments against the request limits (413)."""
    template_bytes = sum(
        len(t.encode("utf-8"))
        for t in (
            request.subject or "",
            request.html_template or "",
            request.text_template or "",
        )
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


def _normalized(content: dict[str, Any]) -> dict[str, Any] | None:
    """``content`` as today's model writes it (None when it no longer validates)."""
    placeholder = {"recipient_email": "placeholder@example.com", "email_recipient_id": "x"}
    try:
        return email_content(ProcessingMessage.model_validate({**content, **placeholder}))
    except ValidationError:
        return None


def _why_suppressed(listed: dict[str, Suppression], address: str) -> str | None:
    entry = listed.get(address.lower())
    return suppression_detail(entry.reason) if entry else None
