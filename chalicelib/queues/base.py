"""What the services need from the queues, whatever carries them (SQS, or a local stand-in).

Adapters raise :class:`~chalicelib.errors.QueueUnavailableError` when the queue cannot be
reached; nothing else escapes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class QueueRecord:
    """One received message: what the consumer needs of an SQS record."""

    message_id: str
    body: str
    receipt_handle: str
    receive_count: int


class ProcessingQueue(Protocol):
    def send_many(self, bodies: list[str], delay_seconds: int = 0) -> list[int]:
        """Enqueue ``bodies`` (visible after ``delay_seconds``); return the indexes of those
        that could not be enqueued."""
        ...

    def delete_many(self, receipt_handles: list[str]) -> None:
        """Acknowledge received messages."""
        ...

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        """Make a received message visible again after ``delay_seconds``."""
        ...


class ResultQueue(Protocol):
    def publish_many(self, bodies: list[str]) -> list[int]:
        """Put status reports on the result queue; return the indexes of those that could
        not be put there."""
        ...
