"""Sending one recipient's email exactly once: the path shared by the API and the consumer.

``deliver`` takes the record's send lease, renders the message, hands it to the provider
chain and records the outcome:

- sent → ``sent`` with provider and message id; rejected or un-renderable → ``failed``
  (permanent, never retried); provider unavailable → lease released, still ``queued``
  (the caller retries it later through the queue);
- a record that is already ``sent``/``failed`` is not sent again; one whose lease another
  sender holds is reported busy (retry later).

Every final outcome is stored with ``result_pending`` set and then published; if the result
queue is unreachable it stays pending and :meth:`republish_pending` sends it later.

If the database cannot take the ``sent`` write after the provider accepted the message, the
write goes at once as a *receipt* through the processing queue (retrying it here would eat
the Lambda's time), and the consumer applies it once the database is back: the record is not
sent again for lack of a write. What remains is a process crash between the provider's
acceptance and that write (or receipt), a database outage longer than the lease with another
copy of the message arriving before the receipt, or a provider timeout whose outcome is
unknown: then a recipient may get the email twice, never zero times.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.errors import (
    DatabaseUnavailableError,
    MessageRejectedError,
    ProviderUnavailableError,
    QueueUnavailableError,
)
from chalicelib.models.mail import (
    DeliveryState,
    DeliveryStatus,
    ProcessingMessage,
    ProcessingResult,
)
from chalicelib.providers.base import Address, Attachment, OutgoingMessage, SendResult
from chalicelib.providers.simulator import SimulatorProvider
from chalicelib.queues.base import ProcessingQueue, ResultQueue
from chalicelib.repositories.deliveries import Delivery, DeliveryRepository
from chalicelib.services.render_budget import RenderBudget, RenderMeter
from chalicelib.services.templates import CompiledTemplates, TemplateRenderError

log = logging.getLogger("mmms.delivery")


class MailSender(Protocol):
    """What delivery needs of the provider chain."""

    def send(self, message: OutgoingMessage) -> SendResult: ...


class Outcome(enum.Enum):
    SENT = "sent"  # sent now
    FAILED = "failed"  # failed permanently now
    SUPPRESSED = "suppressed"  # not sent: the address is on the suppression list
    RETRY = "retry"  # every provider unavailable: still queued, send again later
    BUSY = "busy"  # another sender holds the lease: look again later
    DONE = "done"  # was already sent or failed before: nothing done


@dataclass(frozen=True)
class DeliveryOutcome:
    kind: Outcome
    delivery: Delivery
    provider_response: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


class EventSink(Protocol):
    """Where simulated provider events go: the events queue (or straight to the service)."""

    def send_many(self, bodies: list[str], delay_seconds: int = 0) -> list[int]: ...


class DeliveryService:
    """Sends one recipient (see the module doc).

    ``test_sender`` sends the recipients of test keys (the simulator), whatever ``sender``
    is; ``suppressed`` tells which addresses are on the suppression list (checked right
    before each send, since an address may be listed after its recipient was queued);
    ``events`` takes the events a simulating provider produced for a send.
    """

    def __init__(
        self,
        repository: DeliveryRepository,
        sender: MailSender,
        results: ResultQueue,
        receipts: ProcessingQueue,
        *,
        lease_seconds: float = 120.0,
        test_sender: MailSender | None = None,
        suppressed: Callable[[str], str | None] = lambda _address: None,
        events: EventSink | None = None,
        render_budget: RenderBudget | None = None,
    ) -> None:
        self._repo = repository
        self._sender = sender
        self._results = results
        self._receipts = receipts
        self._lease = lease_seconds
        self._test_sender = test_sender or SimulatorProvider()
        self._suppressed = suppressed
        self._events = events
        self._render_budget = render_budget or RenderBudget()

    def deliver(self, job: ProcessingMessage, delivery: Delivery) -> DeliveryOutcome:
        if delivery.status is not DeliveryState.QUEUED:
            self.flush_result(delivery)
            return DeliveryOutcome(Outcome.DONE, delivery)
        why_suppressed = self._suppressed(delivery.recipient)
        if why_suppressed is not None:
            return self._suppress(delivery, why_suppressed)
        claimed = self._repo.claim(delivery.id, self._lease)
        if claimed is None:
            return self._not_claimed(delivery)
        try:
            message = build_message(job, claimed, RenderMeter(self._render_budget))
        except TemplateRenderError as err:
            return self._fail(claimed, str(err), "template_error")
        return self._send(claimed, message)

    def _send(self, claimed: Delivery, message: OutgoingMessage) -> DeliveryOutcome:
        sender = self._test_sender if claimed.test_mode else self._sender
        try:
            result = sender.send(message)
        except ProviderUnavailableError as err:
            released = self._repo.release(claimed, str(err)) or claimed
            log.warning(
                "no provider available", extra={"delivery_id": str(claimed.id), "error": str(err)}
            )
            return DeliveryOutcome(Outcome.RETRY, released, error=str(err))
        except MessageRejectedError as err:
            return self._fail(claimed, str(err), "rejected", provider=err.provider)
        sent = self._record(claimed, result)
        self.flush_result(sent)
        self._follow_up(result)
        return DeliveryOutcome(Outcome.SENT, sent, provider_response=result.response)

    def _suppress(self, delivery: Delivery, detail: str) -> DeliveryOutcome:
        suppressed = self._repo.mark_suppressed(delivery, detail)
        if suppressed is None:  # someone else holds it or finished it meanwhile
            return self._not_claimed(delivery)
        self.flush_result(suppressed)
        return DeliveryOutcome(Outcome.SUPPRESSED, suppressed, error=detail)

    def _follow_up(self, result: SendResult) -> None:
        """Hand a simulating provider's events to the events path (after the send is stored,
        so they find their recipient)."""
        if not result.follow_up or self._events is None:
            return
        if self._events.send_many(list(result.follow_up)):
            log.warning("simulated events could not be queued", extra={"provider": result.provider})

    def apply_receipt(
        self, body: str, delivery_id: uuid.UUID, provider: str, message_id: str
    ) -> None:
        """Record a send whose write had to wait for the database (see the module doc).

        While the database is still down the receipt goes back on the queue with a short
        delay, as a new message: it must not use up receives and end in the dead-letter queue.
        """
        try:
            recorded = self._repo.record_sent(delivery_id, provider, message_id)
        except DatabaseUnavailableError:
            if self._receipts.send_many([body], delay_seconds=RECEIPT_RETRY_SECONDS):
                raise
            return
        if recorded is not None:
            self.flush_result(recorded)

    def _record(self, claimed: Delivery, result: SendResult) -> Delivery:
        """Write ``sent``; if the database stays down, hand the write to a queued receipt."""
        try:
            recorded = self._repo.mark_sent(claimed, result.provider, result.message_id)
        except DatabaseUnavailableError:
            receipt = receipt_body(claimed.id, result)
            if self._receipts.send_many([receipt]):
                raise  # neither the database nor the queue: the lease is all that is left
            log.warning(
                "sent; the write waits for the database", extra={"delivery_id": str(claimed.id)}
            )
            return dataclasses.replace(
                claimed,
                status=DeliveryState.SENT,
                provider=result.provider,
                message_id=result.message_id,
                sent_at=datetime.now(UTC),
                result_pending=False,
            )
        if recorded is None:  # our lease expired mid-send and someone else took the record
            log.error("lease lost during a send", extra={"delivery_id": str(claimed.id)})
            return self._repo.get(claimed.id) or claimed
        return recorded

    def give_up(self, delivery: Delivery, error: str) -> Delivery:
        """Mark a record failed after its last allowed attempt, and report it."""
        failed = self._repo.mark_failed(delivery, error, "retries_exhausted", as_holder=False)
        if failed is not None:
            self.flush_result(failed)
            return failed
        return delivery

    def fail(self, delivery: Delivery, error: str, detail: str) -> Delivery:
        """Mark an unleased record failed for good (e.g. a malformed message) and report it."""
        failed = self._repo.mark_failed(delivery, error, detail, as_holder=False) or delivery
        self.flush_result(failed)
        return failed

    def flush_result(self, delivery: Delivery) -> None:
        """Publish the record's outcome if it still has to be; keep it pending on failure."""
        if not delivery.result_pending:
            return
        try:
            self._results.publish(result_of(delivery).model_dump_json())
        except QueueUnavailableError:
            log.warning(
                "result queue unreachable; report kept pending",
                extra={"delivery_id": str(delivery.id)},
            )
            return
        self._repo.result_published(delivery.id)

    def republish_pending(self, limit: int = 100) -> int:
        """Publish outcomes whose report could not be published when they happened."""
        pending = self._repo.pending_results(limit)
        for delivery in pending:
            self.flush_result(delivery)
        return len(pending)

    def _fail(
        self, delivery: Delivery, error: str, detail: str, provider: str | None = None
    ) -> DeliveryOutcome:
        failed = self._repo.mark_failed(delivery, error, detail, provider, as_holder=True)
        failed = failed or delivery
        log.info(
            "delivery failed permanently",
            extra={"delivery_id": str(delivery.id), "detail": detail, "error": error},
        )
        self.flush_result(failed)
        return DeliveryOutcome(Outcome.FAILED, failed, error=error)

    def _not_claimed(self, delivery: Delivery) -> DeliveryOutcome:
        current = self._repo.find(
            delivery.api_key_id, delivery.email_id, delivery.email_recipient_id
        )
        if current.status is DeliveryState.QUEUED:
            return DeliveryOutcome(Outcome.BUSY, current)
        self.flush_result(current)
        return DeliveryOutcome(Outcome.DONE, current)


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


def build_message(
    job: ProcessingMessage, delivery: Delivery, meter: RenderMeter | None = None
) -> OutgoingMessage:
    """The recipient's rendered email, within ``meter``'s budget. Raises TemplateRenderError
    (a queued message over the budget fails for good: rendering it again would not help)."""
    rendered = compiled_templates(job.subject, job.html_template, job.text_template).render(
        template_values(job), meter
    )
    domain = job.sender_email.rpartition("@")[2]
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
            "email_recipient_id": delivery.email_recipient_id,
            **({"client_env_id": job.client_env_id} if job.client_env_id else {}),
        },
        # The same Message-ID whichever attempt or provider sends it.
        message_id=f"<{delivery.id}@{domain}>",
    )


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
