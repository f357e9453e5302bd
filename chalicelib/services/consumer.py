"""The processing-queue consumer: one verdict per record, records sent concurrently.

For each record:

- a *receipt* (a send whose database write had to wait, see ``delivery``) → recorded;
- a body that is not a processing message → reported ``failed`` (when it names an email and a
  recipient) and acknowledged: never retried, never crashes the batch;
- a recipient already ``sent``/``failed`` → acknowledged without sending (at-least-once SQS
  delivery never becomes a second email);
- sent, rejected, or un-renderable → acknowledged (the outcome is stored and reported);
- transient trouble (every provider unavailable, another sender holds the lease, database or
  queue down) → retried later with exponential backoff; at the queue's last receive the
  record is marked ``failed`` and reported, and SQS moves the message to the dead-letter queue.
"""

from __future__ import annotations

import enum
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from chalicelib.errors import ServiceUnavailableError
from chalicelib.models.mail import ProcessingMessage
from chalicelib.queues.base import QueueRecord
from chalicelib.repositories.deliveries import Delivery, DeliveryRepository, NewDelivery
from chalicelib.services.delivery import RECEIPT_KEY, DeliveryService, Outcome
from chalicelib.services.mail import new_delivery

log = logging.getLogger("mmms.consumer")


class Verdict(enum.Enum):
    ACK = "ack"
    RETRY = "retry"


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff and the last receive; built from the settings, which hold the defaults."""

    max_receives: int
    base_delay_seconds: int
    max_delay_seconds: int

    def delay_for(self, receive_count: int) -> int:
        return int(
            min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(0, receive_count - 1))
        )


@dataclass(frozen=True)
class BatchReport:
    acknowledged: list[QueueRecord]
    retry: list[tuple[QueueRecord, int]]  # (record, delay in seconds)


class QueueConsumer:
    def __init__(
        self,
        deliveries: DeliveryRepository,
        delivery: DeliveryService,
        policy: RetryPolicy,
        *,
        concurrency: int = 10,
    ) -> None:
        self._repo = deliveries
        self._delivery = delivery
        self._policy = policy
        self._concurrency = concurrency

    def retry_delay(self, receive_count: int) -> int:
        return self._policy.delay_for(receive_count)

    def process_batch(self, records: list[QueueRecord]) -> BatchReport:
        if not records:
            return BatchReport([], [])
        workers = max(1, min(self._concurrency, len(records)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmms-send") as pool:
            verdicts = list(pool.map(self._process_isolated, records))
        report = BatchReport(
            acknowledged=[r for r, v in zip(records, verdicts, strict=True) if v is Verdict.ACK],
            retry=[
                (r, self._policy.delay_for(r.receive_count))
                for r, v in zip(records, verdicts, strict=True)
                if v is Verdict.RETRY
            ],
        )
        log.info(
            "batch processed",
            extra={
                "records": len(records),
                "acknowledged": len(report.acknowledged),
                "retry": len(report.retry),
            },
        )
        return report

    def _process_isolated(self, record: QueueRecord) -> Verdict:
        """One record's verdict; no record's failure can take the batch down."""
        try:
            return self._process(record)
        except ServiceUnavailableError as err:
            log.warning(
                "transient failure", extra={"message_id": record.message_id, "error": str(err)}
            )
            return Verdict.RETRY
        except Exception:
            log.exception("unexpected failure", extra={"message_id": record.message_id})
            return Verdict.RETRY

    def _process(self, record: QueueRecord) -> Verdict:
        fields = _loose_json(record.body)
        if isinstance(fields.get(RECEIPT_KEY), dict):
            return self._apply_receipt(record.body, fields[RECEIPT_KEY])
        try:
            job = ProcessingMessage.model_validate_json(record.body)
        except ValidationError as err:
            self._report_malformed(record, err)
            return Verdict.ACK
        delivery = self._record_for(job)
        outcome = self._delivery.deliver(job, delivery)
        if outcome.kind in (Outcome.RETRY, Outcome.BUSY):
            # Only a record nobody is sending can be given up: a busy one (another sender
            # holds its lease) is left to that sender even if this message dead-letters.
            if outcome.kind is Outcome.RETRY and record.receive_count >= self._policy.max_receives:
                self._delivery.give_up(
                    outcome.delivery,
                    f"gave up after {record.receive_count} attempts: {outcome.error}",
                )
            return Verdict.RETRY
        return Verdict.ACK

    def _apply_receipt(self, body: str, receipt: dict[str, Any]) -> Verdict:
        try:
            delivery_id = uuid.UUID(str(receipt["delivery_id"]))
            provider, message_id = str(receipt["provider"]), str(receipt["message_id"])
        except (KeyError, ValueError):
            log.error("malformed receipt", extra={"receipt": receipt})
            return Verdict.ACK
        self._delivery.apply_receipt(body, delivery_id, provider, message_id)
        return Verdict.ACK

    def _record_for(self, job: ProcessingMessage) -> Delivery:
        """The job's delivery record, created if a producer outside MMMS queued it."""
        key = _key_id(job.api_key_id)
        found = self._repo.find_many(key, job.email_id, [job.recipient_id])
        if job.recipient_id in found:
            return found[job.recipient_id]
        self._repo.insert_new(key, [new_delivery(job, dispatched=True)])
        return self._repo.find(key, job.email_id, job.recipient_id)

    def _report_malformed(self, record: QueueRecord, err: ValidationError) -> None:
        error = f"malformed processing message: {_summary(err)}"
        log.error("malformed message", extra={"message_id": record.message_id, "error": error})
        fields = {
            k: v
            for k, v in _loose_json(record.body).items()
            if isinstance(v, str) and v and "\x00" not in v  # PostgreSQL cannot store NUL
        }
        email_id = fields.get("email_id")
        recipient = fields.get("recipient_email")
        if not email_id or not recipient:
            return
        key = _key_id(fields.get("api_key_id"))
        recipient_id = fields.get("email_recipient_id") or recipient.lower()
        self._repo.insert_new(
            key,
            [
                NewDelivery(
                    email_id=email_id[:200],
                    email_recipient_id=recipient_id[:200],
                    recipient=recipient[:320],
                    client_env_id=fields.get("client_env_id"),
                    project_id=fields.get("projectId"),
                    closure_id=fields.get("closureId"),
                    dispatched=True,
                )
            ],
        )
        self._delivery.fail(
            self._repo.find(key, email_id[:200], recipient_id[:200]), error, "malformed_message"
        )


def _summary(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
        for e in err.errors(include_url=False)[:5]
    )


def _loose_json(body: str) -> dict[str, Any]:
    """The body as a JSON object, or {} (to tell receipts apart and report malformed ones)."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _key_id(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
