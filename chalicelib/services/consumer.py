"""The processing-queue consumer: one verdict per record, a batch's sends together.

The batch's jobs go to ``DeliveryService.deliver_many`` together (one database statement per
step for the whole batch, the sends concurrent). For each record:

- a *receipt* (a send whose database write had to wait, see ``delivery``) → recorded;
- a campaign's *chunk* (several recipients recorded already, see ``campaign_processing``) →
  its recipients still queued are sent with the batch; acknowledged once all are done;
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
import functools
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from chalicelib.errors import ServiceUnavailableError
from chalicelib.models.campaigns import CHUNK_KEY, CampaignChunk
from chalicelib.models.mail import ProcessingMessage
from chalicelib.queues.base import QueueRecord
from chalicelib.repositories.deliveries import DeliveryRepository
from chalicelib.repositories.delivery_rows import NewDelivery
from chalicelib.services.delivery import DeliveryOutcome, DeliveryService, Outcome
from chalicelib.services.messages import RECEIPT_KEY, api_key_uuid

log = logging.getLogger("mmms.consumer")
_T = TypeVar("_T")


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


ChunkExpander = Callable[[list[CampaignChunk]], list[list[ProcessingMessage]]]
"""Each campaign chunk's recipients still queued, as processing messages."""


class QueueConsumer:
    def __init__(
        self,
        deliveries: DeliveryRepository,
        delivery: DeliveryService,
        policy: RetryPolicy,
        chunks: ChunkExpander | None = None,
    ) -> None:
        self._repo = deliveries
        self._delivery = delivery
        self._policy = policy
        self._chunks = chunks

    def retry_delay(self, receive_count: int) -> int:
        return self._policy.delay_for(receive_count)

    def process_batch(self, records: list[QueueRecord]) -> BatchReport:
        if not records:
            return BatchReport([], [])
        verdicts: dict[int, Verdict] = {}
        jobs: dict[int, list[ProcessingMessage]] = {}
        chunks: dict[int, CampaignChunk] = {}
        for index, record in enumerate(records):
            parsed = self._isolated(record, self._parse)
            if isinstance(parsed, Verdict):
                verdicts[index] = parsed
            elif isinstance(parsed, CampaignChunk):
                chunks[index] = parsed
            elif isinstance(parsed, ProcessingMessage):
                jobs[index] = [parsed]
        expanded = self._expand(chunks)
        verdicts |= {i: v for i, v in expanded.items() if isinstance(v, Verdict)}
        jobs |= {i: v for i, v in expanded.items() if not isinstance(v, Verdict)}
        verdicts |= self._deliver(records, jobs)
        report = BatchReport(
            acknowledged=[r for i, r in enumerate(records) if verdicts[i] is Verdict.ACK],
            retry=[
                (r, self._policy.delay_for(r.receive_count))
                for i, r in enumerate(records)
                if verdicts[i] is Verdict.RETRY
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

    def _isolated(
        self, record: QueueRecord, step: Callable[[QueueRecord], _T | Verdict]
    ) -> _T | Verdict:
        """``step`` on one record; its failure is that record's retry, not the batch's."""
        try:
            return step(record)
        except ServiceUnavailableError as err:
            log.warning(
                "transient failure", extra={"message_id": record.message_id, "error": str(err)}
            )
            return Verdict.RETRY
        except Exception:
            log.exception("unexpected failure", extra={"message_id": record.message_id})
            return Verdict.RETRY

    def _parse(self, record: QueueRecord) -> ProcessingMessage | CampaignChunk | Verdict:
        """A job to send, a campaign's chunk of them, or the verdict of a receipt or a
        malformed message (handled here)."""
        fields = _loose_json(record.body)
        if isinstance(fields.get(RECEIPT_KEY), dict):
            return self._apply_receipt(record.body, fields[RECEIPT_KEY])
        if isinstance(fields.get(CHUNK_KEY), dict) and self._chunks is not None:
            try:
                return CampaignChunk.model_validate(fields[CHUNK_KEY])
            except ValidationError:
                log.error("malformed campaign chunk", extra={"message_id": record.message_id})
                return Verdict.ACK
        try:
            return ProcessingMessage.model_validate_json(record.body)
        except ValidationError as err:
            self._report_malformed(record, err)
            return Verdict.ACK

    def _expand(
        self, chunks: dict[int, CampaignChunk]
    ) -> dict[int, list[ProcessingMessage] | Verdict]:
        """The chunks' recipients still queued (one statement for the batch's chunks)."""
        if not chunks or self._chunks is None:
            return {}
        try:
            expanded = self._chunks(list(chunks.values()))
        except ServiceUnavailableError as err:
            log.warning("campaign chunks are retried", extra={"error": str(err)})
            return dict.fromkeys(chunks, Verdict.RETRY)
        return dict(zip(chunks, expanded, strict=True))

    def _deliver(
        self, records: list[QueueRecord], jobs: dict[int, list[ProcessingMessage]]
    ) -> dict[int, Verdict]:
        """Send the batch's jobs together (a chunk record has several, any other one); a
        database outage before any send retries them all. A record is acknowledged once
        every one of its jobs is done."""
        if not jobs:
            return {}
        owners = [index for index, owned in jobs.items() for _job in owned]
        flat = [job for owned in jobs.values() for job in owned]
        try:
            outcomes = self._delivery.deliver_many(flat) if flat else []
        except ServiceUnavailableError as err:
            log.warning("transient failure: the batch is retried", extra={"error": str(err)})
            return dict.fromkeys(jobs, Verdict.RETRY)
        except Exception:
            log.exception("unexpected failure: the batch is retried")
            return dict.fromkeys(jobs, Verdict.RETRY)
        verdicts: dict[int, Verdict] = dict.fromkeys(jobs, Verdict.ACK)
        for index, outcome in zip(owners, outcomes, strict=True):
            verdict = self._isolated(records[index], functools.partial(self._verdict, outcome))
            if verdict is Verdict.RETRY:
                verdicts[index] = Verdict.RETRY
        return verdicts

    def _verdict(self, outcome: DeliveryOutcome, record: QueueRecord) -> Verdict:
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
        key = api_key_uuid(fields.get("api_key_id"))
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
