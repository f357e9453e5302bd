"""The local queue worker: the Lambda's consumer code, driven by a polling loop.

Each round receives up to 10 messages from the processing queue (and from the events queue)
and calls the same ``handle_processing_batch`` (``handle_events_batch``) the Lambda handlers
call. As Lambda does, it deletes the whole batch when the handler returns,
and leaves it alone when the handler raises (the handler has already deleted the records
that succeeded and delayed the others).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.controllers.campaigns import handle_uploads_batch, tick_campaigns
from chalicelib.controllers.queue_consumer import (
    handle_events_batch,
    handle_processing_batch,
    sweep_deliveries,
)
from chalicelib.errors import BatchIncompleteError
from chalicelib.queues.base import ProcessingQueue, QueueRecord

log = logging.getLogger("mmms.worker")

Receive = Callable[[int], list[QueueRecord]]
Handler = Callable[[list[QueueRecord], Container], dict[str, Any]]


def sqs_receiver(client: Any, queue_url: str, wait_seconds: int = 1) -> Receive:
    """Receive from a real SQS queue (or an emulator) with a short long-poll."""

    def receive(max_messages: int) -> list[QueueRecord]:
        messages = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        return [
            QueueRecord(
                m["MessageId"],
                m["Body"],
                m["ReceiptHandle"],
                int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            )
            for m in messages
        ]

    return receive


class Worker(threading.Thread):
    def __init__(
        self,
        services: Container,
        receive: Receive,
        *,
        receive_events: Receive | None = None,
        uploads: tuple[Receive, ProcessingQueue] | None = None,
        idle_seconds: float = 0.5,
        sweep_every_seconds: float = 60.0,
        tick_every_seconds: float = 15.0,
    ) -> None:
        super().__init__(name="mmms-worker", daemon=True)
        self._services = services
        self._receive = receive
        self._receive_events = receive_events
        self._idle = idle_seconds
        self._sweep_every = sweep_every_seconds
        self._uploads = uploads
        self._tick_every = tick_every_seconds
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        last_sweep = last_tick = time.monotonic()
        while not self._stop_event.is_set():
            try:
                handled = self.run_once()
                if time.monotonic() - last_sweep > self._sweep_every:
                    sweep_deliveries(self._services)
                    last_sweep = time.monotonic()
                if time.monotonic() - last_tick > self._tick_every:
                    tick_campaigns(self._services, remaining_seconds=self._tick_every)
                    last_tick = time.monotonic()
            except Exception:  # like Lambda: log it; the messages come back to be retried
                log.exception("worker round failed")
                handled = 0
            if not handled:
                self._stop_event.wait(self._idle)

    def run_once(self) -> int:
        """One round on each queue: receive, process, acknowledge. Returns the messages seen."""
        seen = self._round(self._receive, handle_processing_batch, self._services.processing_queue)
        events_queue = self._services.events_queue
        if self._receive_events is not None and events_queue is not None:
            seen += self._round(self._receive_events, handle_events_batch, events_queue)
        if self._uploads is not None:
            receive_uploads, uploads_queue = self._uploads
            seen += self._round(receive_uploads, _handle_uploads, uploads_queue)
        return seen

    def _round(self, receive: Receive, handle: Handler, queue: ProcessingQueue) -> int:
        records = receive(10)
        if not records:
            return 0
        try:
            handle(records, self._services)
        except BatchIncompleteError as err:
            log.info("batch incomplete", extra={"reason": str(err)})
        else:
            queue.delete_many([r.receipt_handle for r in records])
        return len(records)


def _handle_uploads(records: list[QueueRecord], services: Container) -> dict[str, Any]:
    """The uploads queue's Lambda handler, with a Lambda's 15 minutes."""
    return handle_uploads_batch(records, services, remaining_seconds=900)
