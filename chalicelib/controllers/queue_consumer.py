"""The processing queue's Lambda handler, and the same for the local worker.

Chalice does not set ``ReportBatchItemFailures`` on the event source, so returning
``batchItemFailures`` alone would make Lambda delete the whole batch. Instead the handler
deletes the records that succeeded itself, delays the failed ones (backoff), and raises
:class:`BatchIncompleteError` so Lambda leaves them on the queue. That is correct with or
without ``ReportBatchItemFailures``.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.errors import BatchIncompleteError, ServiceUnavailableError
from chalicelib.queues.base import ProcessingQueue, QueueRecord
from chalicelib.services.consumer import BatchReport
from chalicelib.services.recovery import SweepReport

log = logging.getLogger("mmms.consumer")


def records_from_sqs_event(records: list[dict[str, Any]]) -> list[QueueRecord]:
    """QueueRecords from Lambda's SQS event records (``SQSRecord.to_dict()``)."""
    return [
        QueueRecord(
            message_id=str(r.get("messageId", "")),
            body=str(r.get("body", "")),
            receipt_handle=str(r.get("receiptHandle", "")),
            receive_count=int(r.get("attributes", {}).get("ApproximateReceiveCount", "1")),
        )
        for r in records
    ]


def handle_processing_batch(records: list[QueueRecord], services: Container) -> dict[str, Any]:
    report = services.consumer.process_batch(records)
    try:
        services.delivery.republish_pending(limit=20)
    except ServiceUnavailableError:  # a courtesy; the sweep does it anyway
        log.warning("could not republish pending results", exc_info=True)
    return _settle(services.processing_queue, records, report)


def handle_events_batch(records: list[QueueRecord], services: Container) -> dict[str, Any]:
    """The SES events queue's handler: each record applied on its own; only those that met a
    database outage are retried (malformed ones and unknown message ids are acknowledged)."""
    acknowledged, retry = [], []
    for record in records:
        try:
            services.events.apply_ses_message(record.body)
        except ServiceUnavailableError as err:
            log.warning(
                "event will be retried", extra={"message_id": record.message_id, "error": str(err)}
            )
            retry.append((record, services.consumer.retry_delay(record.receive_count)))
        else:
            acknowledged.append(record)
    if services.events_queue is None and retry:
        raise BatchIncompleteError("events queue not configured: the whole batch is retried")
    queue = services.events_queue
    if queue is None:
        return {"batchItemFailures": []}
    return _settle(queue, records, BatchReport(acknowledged, retry))


def _settle(
    queue: ProcessingQueue, records: list[QueueRecord], report: BatchReport
) -> dict[str, Any]:
    """Lambda's end of a batch: delete what succeeded and delay the rest, then raise."""
    if not report.retry:
        return {"batchItemFailures": []}
    queue.delete_many([r.receipt_handle for r in report.acknowledged])
    for record, delay in report.retry:
        queue.retry_later(record.receipt_handle, delay)
    failed = [record.message_id for record, _ in report.retry]
    raise BatchIncompleteError(f"{len(failed)} of {len(records)} records will be retried: {failed}")


def sweep_deliveries(services: Container) -> SweepReport:
    """The scheduled sweep: re-queue undispatched recipients, fail abandoned ones, republish;
    and drop old rate-limit windows, per-IP windows and daily counts."""
    services.rate_limiter.prune()
    services.key_limits.prune()
    services.webhook_tokens.prune(2 * services.settings.webhook_max_age_seconds)
    return services.recovery.sweep()
