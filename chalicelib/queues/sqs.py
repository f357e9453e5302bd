"""SQS adapters (boto3). Clients come from a factory: created on first use, never at import.

``send_many`` (and the result queue's ``publish_many``) packs messages into
``SendMessageBatch`` calls of at most 10 entries and at most ``max_batch_bytes`` per call,
and runs the calls on a few threads: 10,000 recipients are 1,000 calls, which sequentially
would take seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import QueueUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SQS_BATCH_ENTRIES = 10
# SQS limit for one message and for the sum of one batch (256 KiB).
SQS_MAX_BYTES = 262_144


def batches(bodies: list[str], max_bytes: int = SQS_MAX_BYTES) -> Iterator[list[int]]:
    """Indexes of ``bodies`` grouped into SQS batches: ≤10 entries, ≤``max_bytes`` in all."""
    batch: list[int] = []
    size = 0
    for index, body in enumerate(bodies):
        length = len(body.encode("utf-8"))
        if batch and (len(batch) == SQS_BATCH_ENTRIES or size + length > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(index)
        size += length
    if batch:
        yield batch


class _SqsSender:
    def __init__(
        self, client: Callable[[], SQSClient], queue_url: str, *, parallel_calls: int = 8
    ) -> None:
        self._client = client
        self._url = queue_url
        self._parallel = parallel_calls

    def send_many(self, bodies: list[str], delay_seconds: int = 0) -> list[int]:
        groups = list(batches(bodies))
        if len(groups) == 1:
            return self._send_batch(bodies, groups[0], delay_seconds)
        with ThreadPoolExecutor(max_workers=self._parallel) as pool:
            failed = pool.map(lambda group: self._send_batch(bodies, group, delay_seconds), groups)
            return sorted(index for group in failed for index in group)

    def _send_batch(self, bodies: list[str], indexes: list[int], delay_seconds: int) -> list[int]:
        entries: list[Any] = [
            {"Id": str(i), "MessageBody": bodies[i], "DelaySeconds": delay_seconds} for i in indexes
        ]
        try:
            response = self._client().send_message_batch(QueueUrl=self._url, Entries=entries)
        except (BotoCoreError, ClientError):
            return indexes
        return [int(entry["Id"]) for entry in response.get("Failed", [])]


class SqsProcessingQueue(_SqsSender):
    def delete_many(self, receipt_handles: list[str]) -> None:
        for start in range(0, len(receipt_handles), SQS_BATCH_ENTRIES):
            chunk = receipt_handles[start : start + SQS_BATCH_ENTRIES]
            entries: list[Any] = [
                {"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(chunk)
            ]
            try:
                response = self._client().delete_message_batch(QueueUrl=self._url, Entries=entries)
            except (BotoCoreError, ClientError) as err:
                raise QueueUnavailableError("could not delete processed messages") from err
            if response.get("Failed"):
                raise QueueUnavailableError(f"SQS refused deletes: {response['Failed']}")

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        try:
            self._client().change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay_seconds
            )
        except (BotoCoreError, ClientError) as err:
            raise QueueUnavailableError("could not delay a message") from err


class SqsResultQueue(_SqsSender):
    def publish_many(self, bodies: list[str]) -> list[int]:
        return self.send_many(bodies)
