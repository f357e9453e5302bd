"""Stand-ins the benchmark plugs into the container: in-memory queues and a slow provider.

They keep what they were given so each measurement can check that the work really happened
(N bodies queued, N emails sent, N results published) before its number is believed.
"""

from __future__ import annotations

import threading
import time

from chalicelib.providers.base import OutgoingMessage, SendResult


class MemoryProcessingQueue:
    """A ProcessingQueue that stores bodies: accept time without any queue transport cost."""

    def __init__(self) -> None:
        self._bodies: list[str] = []
        self._lock = threading.Lock()

    def send_many(self, bodies: list[str], delay_seconds: int = 0) -> list[int]:
        with self._lock:
            self._bodies.extend(bodies)
        return []

    def delete_many(self, receipt_handles: list[str]) -> None:
        return None

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        return None

    def take(self) -> list[str]:
        """Every body queued since the last call, oldest first."""
        with self._lock:
            bodies, self._bodies = self._bodies, []
        return bodies


class MemoryResultQueue:
    """A ResultQueue that stores bodies: the consumer comparison is about the consumer only."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def publish_many(self, bodies: list[str]) -> list[int]:
        with self._lock:
            self._count += len(bodies)
        return []

    @property
    def published(self) -> int:
        with self._lock:
            return self._count


class LatencyProvider:
    """A mail provider that answers after a fixed delay, like an HTTP API would. Thread-safe.

    ``time.sleep`` releases the GIL, exactly as waiting on a socket does, so threads overlap
    the wait the way they would against a real provider.
    """

    def __init__(self, latency_seconds: float, name: str = "latency") -> None:
        self.name = name
        self._latency = latency_seconds
        self._sent = 0
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> SendResult:
        time.sleep(self._latency)
        with self._lock:
            self._sent += 1
            number = self._sent
        return SendResult(
            self.name, f"{self.name}-{number}", {"MessageId": f"{self.name}-{number}"}
        )

    @property
    def sent(self) -> int:
        with self._lock:
            return self._sent
