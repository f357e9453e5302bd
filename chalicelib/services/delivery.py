"""Sending each recipient's email exactly once: the path shared by the API and the consumer.

``deliver_many`` takes a batch of jobs (the API's single send is a batch of one) and, in
three database statements for the whole batch:

1. finds their rows, takes the send lease of those ``queued`` and not leased, and looks
   their addresses up on the suppression list (an address may be listed after its recipient
   was queued), in one statement (``claim_keys``). A row already ``sent``/``failed``/... is
   not sent (its report is published again if still pending); one whose lease another sender
   holds is reported busy (retry later); a row met twice in the batch is sent once; a job
   with no row (a producer outside MMMS queued it) gets one first;
2. renders the batch's messages on the send threads while that statement runs (a batch of
   one renders when it sends), and sends the leased ones concurrently (``concurrency``
   threads, kept between batches: ``sending``);
3. records every outcome in one statement (``settle_many``): sent → ``sent`` with provider
   and message id; listed → ``suppressed`` (not sent); rejected or un-renderable → ``failed``
   (permanent, never retried); provider unavailable or throttled → lease released, still
   ``queued`` (the caller retries it later through the queue);
4. publishes the reports with one ``SendMessageBatch`` and clears their ``result_pending``
   in one statement; a report the result queue did not take stays pending and
   :meth:`republish_pending` sends it later.

If the database cannot take the outcomes after the provider accepted messages, the ``sent``
writes go at once as *receipts* through the processing queue (retrying here would eat the
Lambda's time), and the consumer applies them once the database is back: a recipient is not
sent again for lack of a write. What remains is a process crash between the provider's
acceptance and that write (or receipt), a database outage longer than the lease with another
copy of the message arriving before the receipt, or a provider timeout whose outcome is
unknown: then a recipient may get the email twice, never zero times.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.errors import DatabaseUnavailableError
from chalicelib.models.mail import DeliveryState, ProcessingMessage
from chalicelib.providers.base import SendResult
from chalicelib.providers.simulator import SimulatorProvider
from chalicelib.queues.base import ProcessingQueue, ResultQueue
from chalicelib.repositories.deliveries import DeliveryRepository
from chalicelib.repositories.delivery_rows import Delivery, JobKey
from chalicelib.repositories.send_leases import Claim, SendLeaseRepository, Settlement
from chalicelib.services.messages import (
    RECEIPT_RETRY_SECONDS,
    job_key,
    new_delivery,
    receipt_body,
    result_of,
)
from chalicelib.services.render_budget import RenderBudget
from chalicelib.services.sending import Attempt, Leased, MailSender, SendPipeline
from chalicelib.services.suppressions import suppression_detail

log = logging.getLogger("mmms.delivery")


class Outcome(enum.Enum):
    SENT = "sent"  # sent now
    FAILED = "failed"  # failed permanently now
    SUPPRESSED = "suppressed"  # not sent: the address is on the suppression list
    RETRY = "retry"  # not sent now (providers unavailable, an error): send again later
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
    """Sends recipients (see the module doc).

    ``test_sender`` sends the recipients of test keys (the simulator), whatever ``sender``
    is; ``events`` takes the events a simulating provider produced for a send;
    ``concurrency`` bounds the sends in flight (threads started once, kept between batches:
    starting ten threads per batch cost 2 ms of every 50).
    """

    def __init__(
        self,
        repository: DeliveryRepository,
        leases: SendLeaseRepository,
        sender: MailSender,
        results: ResultQueue,
        receipts: ProcessingQueue,
        *,
        lease_seconds: float = 120.0,
        test_sender: MailSender | None = None,
        events: EventSink | None = None,
        render_budget: RenderBudget | None = None,
        concurrency: int = 10,
    ) -> None:
        self._repo = repository
        self._leases = leases
        self._results = results
        self._receipts = receipts
        self._lease = lease_seconds
        self._events = events
        self._pipeline = SendPipeline(
            sender,
            test_sender or SimulatorProvider(),
            render_budget or RenderBudget(),
            concurrency,
        )

    def close(self) -> None:
        """Stop the send threads (they start again if needed)."""
        self._pipeline.close()

    def deliver(self, job: ProcessingMessage) -> DeliveryOutcome:
        """Send one recipient (a batch of one)."""
        return self.deliver_many([job])[0]

    def deliver_many(self, jobs: list[ProcessingMessage]) -> list[DeliveryOutcome]:
        """Send a batch of jobs; one outcome per job, in order.

        Raises DatabaseUnavailableError when the database fails before anything was sent.
        """
        keys = [job_key(job) for job in jobs]
        rendering = self._pipeline.render_ahead(jobs)
        claims = self._claim(jobs, keys)
        outcomes: dict[int, DeliveryOutcome] = {}
        reports: list[Delivery] = []
        leased: dict[int, Leased] = {}
        suppressed: dict[int, Settlement] = {}
        for index, (job, key) in enumerate(zip(jobs, keys, strict=True)):
            claim = claims.pop(key, None)  # popped: a row met twice in the batch is sent once
            if claim is None or not claim.taken:
                outcomes[index] = self._not_taken(claim, key)
                reports.append(outcomes[index].delivery)
            elif claim.listed is not None:
                detail = suppression_detail(claim.listed)
                suppressed[index] = Settlement(
                    claim.delivery, DeliveryState.SUPPRESSED, detail=detail
                )
            else:
                leased[index] = (job, claim.delivery, rendering.get(index))

        attempts = self._pipeline.attempt_all(leased)
        attempts |= {i: Attempt(s.held, settlement=s) for i, s in suppressed.items()}
        for index, outcome in self._settle(attempts).items():
            outcomes[index] = outcome
            reports.append(outcome.delivery)
        self.flush_results(reports)
        self._follow_up([a.result for a in attempts.values() if a.result is not None])
        return [outcomes[index] for index in range(len(jobs))]

    def _claim(self, jobs: list[ProcessingMessage], keys: list[JobKey]) -> dict[JobKey, Claim]:
        """The batch's rows, leased where possible; jobs without a row get one first."""
        claims = self._leases.claim_keys(keys, self._lease)
        missing = {key: job for key, job in zip(keys, jobs, strict=True) if key not in claims}
        if missing:
            # One insert per email (rows share the email's pass-through fields).
            emails: dict[tuple[Any, ...], list[ProcessingMessage]] = {}
            for (key_id, email_id, _rid), job in missing.items():
                email = (key_id, email_id, job.client_env_id, job.projectId, job.closureId)
                emails.setdefault(email, []).append(job)
            for (key_id, *_fields), group in emails.items():
                self._repo.insert_new(key_id, [new_delivery(j, dispatched=True) for j in group])
            claims |= self._leases.claim_keys(list(missing), self._lease)
        return claims

    def _not_taken(self, claim: Claim | None, key: JobKey) -> DeliveryOutcome:
        """A row this batch does not hold: done before, or busy (another sender, or the same
        row earlier in this batch)."""
        current = claim.delivery if claim else self._repo.find(*key)
        if current.status is DeliveryState.QUEUED:
            return DeliveryOutcome(Outcome.BUSY, current)
        return DeliveryOutcome(Outcome.DONE, current)

    def _settle(self, attempts: dict[int, Attempt]) -> dict[int, DeliveryOutcome]:
        """Write every attempt's outcome in one statement (receipts if the database is down)."""
        settlements = [a.settlement for a in attempts.values() if a.settlement is not None]
        try:
            written = self._leases.settle_many(settlements)
        except DatabaseUnavailableError:
            return self._settle_by_receipts(attempts)
        outcomes = {}
        for index, attempt in attempts.items():
            settlement, claimed = attempt.settlement, attempt.claimed
            if settlement is None:
                outcomes[index] = DeliveryOutcome(Outcome.RETRY, claimed, error=attempt.error)
                continue
            row = written.get(claimed.id)
            if row is None and settlement.status is DeliveryState.SENT:
                # Our lease expired mid-send and someone else took the record.
                log.error("lease lost during a send", extra={"delivery_id": str(claimed.id)})
                row = self._current(claimed)
            row = row or claimed
            if settlement.status is DeliveryState.SENT:
                response = attempt.result.response if attempt.result else {}
                outcomes[index] = DeliveryOutcome(Outcome.SENT, row, provider_response=response)
            elif settlement.status is DeliveryState.SUPPRESSED:
                outcomes[index] = DeliveryOutcome(Outcome.SUPPRESSED, row, error=settlement.detail)
            elif settlement.status is DeliveryState.FAILED:
                log.info(
                    "delivery failed permanently",
                    extra={
                        "delivery_id": str(claimed.id),
                        "detail": settlement.detail,
                        "error": settlement.error,
                    },
                )
                outcomes[index] = DeliveryOutcome(Outcome.FAILED, row, error=settlement.error)
            else:
                outcomes[index] = DeliveryOutcome(Outcome.RETRY, row, error=settlement.error)
        return outcomes

    def _current(self, delivery: Delivery) -> Delivery | None:
        """The row as it is now, or None if the database cannot say: after sends nothing may
        raise (the caller would retry what was sent)."""
        try:
            return self._repo.get(delivery.id)
        except DatabaseUnavailableError:
            return None

    def _settle_by_receipts(self, attempts: dict[int, Attempt]) -> dict[int, DeliveryOutcome]:
        """The database is down after sends: each ``sent`` goes as a receipt on the queue.

        A send whose receipt the queue did not take either, and every other outcome, is left
        to the lease: retried once it expires (a rejected or un-renderable message fails then).
        """
        sent = {i: a for i, a in attempts.items() if a.result is not None}
        not_queued = set(
            self._receipts.send_many(
                [receipt_body(a.claimed.id, a.result) for a in sent.values() if a.result]
            )
        )
        outcomes = {}
        for position, (index, attempt) in enumerate(sent.items()):
            result = attempt.result
            if position in not_queued or result is None:
                continue
            log.warning(
                "sent; the write waits for the database",
                extra={"delivery_id": str(attempt.claimed.id)},
            )
            recorded = dataclasses.replace(
                attempt.claimed,
                status=DeliveryState.SENT,
                provider=result.provider,
                message_id=result.message_id,
                sent_at=datetime.now(UTC),
                result_pending=False,  # the receipt's write reports it
            )
            outcomes[index] = DeliveryOutcome(
                Outcome.SENT, recorded, provider_response=result.response
            )
        for index, attempt in attempts.items():
            if index not in outcomes:
                outcomes[index] = DeliveryOutcome(
                    Outcome.RETRY,
                    attempt.claimed,
                    error="the database is unreachable: the outcome could not be recorded",
                )
        return outcomes

    def _follow_up(self, results: list[SendResult]) -> None:
        """Hand simulating providers' events to the events path (after the sends are stored,
        so they find their recipients)."""
        bodies = [body for result in results for body in result.follow_up]
        if not bodies or self._events is None:
            return
        if self._events.send_many(bodies):
            log.warning("simulated events could not be queued")

    def apply_receipt(
        self, body: str, delivery_id: uuid.UUID, provider: str, message_id: str
    ) -> None:
        """Record a send whose write had to wait for the database (see the module doc).

        While the database is still down the receipt goes back on the queue with a short
        delay, as a new message: it must not use up receives and end in the dead-letter queue.
        """
        try:
            recorded = self._leases.record_sent(delivery_id, provider, message_id)
        except DatabaseUnavailableError:
            if self._receipts.send_many([body], delay_seconds=RECEIPT_RETRY_SECONDS):
                raise
            return
        if recorded is not None:
            self.flush_result(recorded)

    def give_up(self, delivery: Delivery, error: str) -> Delivery:
        """Mark a record failed after its last allowed attempt, and report it."""
        failed = self._leases.mark_failed(delivery, error, "retries_exhausted")
        if failed is not None:
            self.flush_result(failed)
            return failed
        return delivery

    def fail(self, delivery: Delivery, error: str, detail: str) -> Delivery:
        """Mark an unleased record failed for good (e.g. a malformed message) and report it."""
        failed = self._leases.mark_failed(delivery, error, detail) or delivery
        self.flush_result(failed)
        return failed

    def flush_result(self, delivery: Delivery) -> None:
        """Publish the record's outcome if it still has to be; keep it pending on failure."""
        self.flush_results([delivery])

    def flush_results(self, deliveries: list[Delivery]) -> None:
        """Publish the outcomes that still have to be (one queue call per 10), then clear
        their ``result_pending`` in one statement. What the queue or the database did not
        take stays pending: :meth:`republish_pending` tries again (a report may so be
        published twice, never lost)."""
        pending = list({d.id: d for d in deliveries if d.result_pending}.values())
        if not pending:
            return
        refused = set(self._results.publish_many([result_of(d).model_dump_json() for d in pending]))
        if refused:
            log.warning(
                "result queue unreachable; reports kept pending",
                extra={"delivery_ids": [str(pending[i].id) for i in sorted(refused)]},
            )
        published = [d for i, d in enumerate(pending) if i not in refused]
        try:
            self._repo.results_published(published)
        except DatabaseUnavailableError:
            log.warning("reports published but still marked pending: they will be sent again")

    def republish_pending(self, limit: int = 100) -> int:
        """Publish outcomes whose report could not be published when they happened."""
        pending = self._repo.pending_results(limit)
        self.flush_results(pending)
        return len(pending)
