"""Self-healing for recipients that would otherwise wait forever (run every few minutes).

- **Never dispatched**: the row was recorded but its message never reached the queue (the
  process died in between, a send died halfway, the queue or the database was down). Its message is
  rebuilt from the stored email content and queued; sending stays exactly-once because the
  consumer goes through the record's lease.
- **Abandoned**: the row was dispatched long ago and still has no outcome (its message was
  dead-lettered while the database was down, or its sender died). It is marked ``failed``
  and reported, as SPEC §5 asks for a message that exhausted its receives.
- Reports that could not be published are published (``DeliveryService.republish_pending``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chalicelib.queues.base import ProcessingQueue
from chalicelib.repositories.deliveries import DeliveryRepository
from chalicelib.repositories.delivery_rows import Delivery
from chalicelib.services.delivery import DeliveryService
from chalicelib.services.messages import job_from_content

log = logging.getLogger("mmms.recovery")


@dataclass(frozen=True)
class SweepReport:
    redispatched: int
    abandoned: int
    republished: int


class RecoveryService:
    def __init__(
        self,
        deliveries: DeliveryRepository,
        queue: ProcessingQueue,
        delivery: DeliveryService,
        *,
        redispatch_after_seconds: float,
        abandon_after_seconds: float,
    ) -> None:
        self._repo = deliveries
        self._queue = queue
        self._delivery = delivery
        self._redispatch_after = redispatch_after_seconds
        self._abandon_after = abandon_after_seconds

    def sweep(self, limit: int = 500) -> SweepReport:
        report = SweepReport(
            redispatched=self.redispatch(limit),
            abandoned=self.fail_abandoned(limit),
            republished=self._delivery.republish_pending(limit),
        )
        if report != SweepReport(0, 0, 0):
            log.info("sweep", extra=vars(report))
        return report

    def redispatch(self, limit: int) -> int:
        rows = self._repo.undispatched(self._redispatch_after, limit)
        contents: dict[tuple[object, str], dict[str, object] | None] = {}
        ready: list[tuple[Delivery, str]] = []
        lost: list[Delivery] = []
        for row in rows:
            key = (row.api_key_id, row.email_id)
            if key not in contents:
                contents[key] = self._repo.email_content(row.api_key_id, row.email_id)
            content = contents[key]
            if content is None:
                # Cannot be rebuilt: leave it to the abandon rule, which reports it in time.
                log.error("no stored content to re-queue", extra={"delivery_id": str(row.id)})
                lost.append(row)
                continue
            ready.append((row, job_from_content(dict(content), row).model_dump_json()))
        failed = set(self._queue.send_many([body for _, body in ready]))
        self._repo.mark_dispatched(
            [row.id for i, (row, _) in enumerate(ready) if i not in failed]
            + [row.id for row in lost]
        )
        return len(ready) - len(failed)

    def fail_abandoned(self, limit: int) -> int:
        rows = self._repo.abandoned(self._abandon_after, limit)
        hours = self._abandon_after / 3600
        for row in rows:
            self._delivery.give_up(
                row, f"no outcome {hours:g} h after it was queued: its message was dead-lettered"
            )
        return len(rows)
