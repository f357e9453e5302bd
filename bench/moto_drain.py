"""Keep moto's processing queue short while the benchmark fills it.

moto 5.2 rebuilds a queue's attributes on every SendMessage, and that counts every message
already in the queue (``moto/sqs/models.py``: ``Queue.attributes`` →
``approximate_number_of_messages*``, called from ``SQSBackend.send_message``). Sending N
messages into one queue therefore costs O(N²) in moto alone: 1,000 recipients took 11 s,
10,000 would take about 20 minutes. Real SQS has no such cost. A consumer would keep the
queue short; this thread does the same by emptying moto's in-process backend every
millisecond, counting what it removed, so accept time measures the adapter, HTTP and
moto's per-call cost, not moto's scan.
"""

from __future__ import annotations

import threading
from types import TracebackType

from tests.support.moto_server import ACCOUNT_ID, MotoServer


class MotoQueueDrain:
    def __init__(self, moto: MotoServer, queue_name: str, interval_seconds: float = 0.001) -> None:
        from moto.sqs.models import sqs_backends

        self._queue = sqs_backends[ACCOUNT_ID][moto.region].get_queue(queue_name)
        self._interval = interval_seconds
        self._drained = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="moto-drain", daemon=True)

    def __enter__(self) -> MotoQueueDrain:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def take(self) -> int:
        """Messages removed since the last call (draining what is left first)."""
        self._drain()
        drained, self._drained = self._drained, 0
        return drained

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._drain()

    def _drain(self) -> None:
        queue = self._queue
        with queue._messages_lock:
            self._drained += len(queue._messages)
            queue._messages.clear()
