"""Applying provider events to recipients (SPEC 9): statuses, history, suppression, reports.

Every parser (SES on the events queue, the Mailgun and SendGrid webhooks, the simulator)
hands :meth:`EventService.apply` a normalised :class:`ProviderEvent`:

- the recipient rows sent as ``message_id`` are found (an unknown id is logged and
  acknowledged: it is some other system's mail, or older than this database);
- the event is stored once per row (a duplicate changes nothing) and the status moves only
  forward (``TRANSITIONS``: a late ``delivered`` never overwrites ``bounced``);
- a status change is reported once on the result queue (stored as pending in the same
  update, so it survives a result-queue outage);
- a hard bounce or a complaint of a live key's recipient puts the address on the
  suppression list; test keys' events never do.

Cost of a bounce, end to end: one transaction with three statements (find and lock the
row, store the event, move the status), one insert into the suppression list, one result
queue message and one update marking the report published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chalicelib.errors import ServiceUnavailableError
from chalicelib.events.common import MalformedEventError
from chalicelib.events.ses import parse_ses_message
from chalicelib.models.lifecycle import SUPPRESSING, TRANSITIONS, ProviderEvent
from chalicelib.repositories.delivery_events import DeliveryEventRepository, EventApplied
from chalicelib.repositories.delivery_rows import Delivery
from chalicelib.services.delivery import DeliveryService
from chalicelib.services.suppressions import SuppressionService

log = logging.getLogger("mmms.events")


@dataclass(frozen=True)
class EventsApplied:
    received: int
    applied: int  # matched a recipient and was new


class EventService:
    def __init__(
        self,
        deliveries: DeliveryEventRepository,
        suppressions: SuppressionService,
        delivery: DeliveryService,
    ) -> None:
        self._repo = deliveries
        self._suppressions = suppressions
        self._delivery = delivery

    def apply_all(self, events: list[ProviderEvent]) -> EventsApplied:
        return EventsApplied(len(events), sum(self.apply(event) for event in events))

    def apply(self, event: ProviderEvent) -> int:
        """Apply one event; return how many recipient rows it was new for."""
        moves_to, moves_from = TRANSITIONS.get(event.kind, (None, frozenset()))
        applied = self._repo.apply_event(
            event.message_id,
            event_type=event.kind.value,
            at=event.at,
            provider=event.provider,
            detail=event.detail,
            event_key=event.event_key,
            concerns=lambda row: _concerns(event, row),
            moves_to=moves_to,
            moves_from=moves_from,
        )
        if not applied:
            log.info(
                "event for an unknown message id: acknowledged",
                extra={"provider": event.provider, "message_id": event.message_id},
            )
            return 0
        for outcome in applied:
            if outcome.changed:
                self._delivery.flush_result(outcome.delivery)
        self._suppress(event, applied)
        return sum(outcome.new for outcome in applied)

    def apply_ses_message(self, body: str) -> EventsApplied:
        """One events-queue message (SNS-wrapped or raw SES). Malformed ones are logged and
        dropped: retrying cannot mend them."""
        try:
            events = parse_ses_message(body)
        except MalformedEventError as err:
            log.error("malformed SES event dropped", extra={"error": str(err)})
            return EventsApplied(0, 0)
        return self.apply_all(events)

    def _suppress(self, event: ProviderEvent, applied: list[EventApplied]) -> None:
        reason = SUPPRESSING.get(event.kind)
        live = [a.delivery for a in applied if a.new and not a.delivery.test_mode]
        if reason is None or not live:
            return
        addresses = list(event.recipients) or [row.recipient for row in live]
        self._suppressions.add(addresses, reason, email_id=live[0].email_id, detail=event.detail)


class InlineEvents:
    """The events path when there is no events queue: each body is applied at once."""

    def __init__(self) -> None:
        self._service: EventService | None = None

    def bind(self, service: EventService) -> None:
        self._service = service

    def send_many(self, bodies: list[str], delay_seconds: int = 0) -> list[int]:
        if self._service is None:
            return list(range(len(bodies)))
        failed = []
        for index, body in enumerate(bodies):
            try:
                self._service.apply_ses_message(body)
            except ServiceUnavailableError:
                failed.append(index)
        return failed


def _concerns(event: ProviderEvent, row: Delivery) -> bool:
    """Whether the event is about this row's recipient (not only a cc of its message)."""
    return not event.recipients or row.recipient.lower() in event.recipients
