"""Status lookup (SPEC 9): what happened to an email's recipients, for the key that sent it.

A key sees only its own emails: any other ``email_id`` is a 404, exactly like one that does
not exist. The history of a recipient is its send-side steps, read from its row (queued,
sent, failed or suppressed), plus every stored provider event, oldest first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chalicelib.errors import NotFoundError
from chalicelib.models.mail import DeliveryState
from chalicelib.repositories.delivery_rows import Delivery
from chalicelib.repositories.delivery_status import DeliveryStatusRepository, StoredEvent
from chalicelib.services.paging import decode_cursor, next_cursor


@dataclass(frozen=True)
class EmailPage:
    email_id: str
    count: int
    recipients: list[Delivery]
    next_cursor: str | None


@dataclass(frozen=True)
class RecipientHistory:
    delivery: Delivery
    events: list[StoredEvent]


class StatusService:
    def __init__(self, reads: DeliveryStatusRepository) -> None:
        self._repo = reads

    def email(
        self,
        api_key_id: uuid.UUID,
        email_id: str,
        *,
        status: DeliveryState | None,
        cursor: str | None,
        limit: int,
    ) -> EmailPage:
        after = decode_cursor(cursor)
        rows = self._repo.page(api_key_id, email_id, status=status, after=after, limit=limit + 1)
        count = self._repo.count(api_key_id, email_id, status)
        if not rows:  # past the last page, or no such email for this key (404)
            total = count if status is None else self._repo.count(api_key_id, email_id, None)
            if total == 0:
                raise NotFoundError(f"No email {email_id!r} for this API key")
        keys = [row.email_recipient_id for row in rows]
        return EmailPage(email_id, count, rows[:limit], next_cursor(keys, limit))

    def recipient(
        self, api_key_id: uuid.UUID, email_id: str, email_recipient_id: str
    ) -> RecipientHistory:
        delivery = self._repo.recipient(api_key_id, email_id, email_recipient_id)
        if delivery is None:
            raise NotFoundError(f"No recipient {email_recipient_id!r} of email {email_id!r}")
        return self.history(delivery)

    def history(self, delivery: Delivery) -> RecipientHistory:
        """``delivery`` with its events, oldest first."""
        # Provider events are about a message already sent: they follow the send whatever
        # their clocks say (a provider's timestamp may be a few ms before our sent_at).
        events = send_side_events(delivery) + sorted(
            self._repo.events_of(delivery.id), key=lambda e: e.at
        )
        return RecipientHistory(delivery, events)


def send_side_events(delivery: Delivery) -> list[StoredEvent]:
    """The steps MMMS itself took, as events (they live on the row, not in the event table).

    A recipient suppressed when the request was accepted was never queued; one failed by a
    provider event after its send has that event in the table already.
    """
    if delivery.status is DeliveryState.SUPPRESSED and delivery.dispatched_at is None:
        return [StoredEvent("suppressed", delivery.queued_at, None, delivery.status_detail)]
    events = [StoredEvent("queued", delivery.queued_at, None, None)]
    if delivery.sent_at is not None:
        events.append(StoredEvent("sent", delivery.sent_at, delivery.provider, delivery.message_id))
    ended = delivery.updated_at or delivery.queued_at
    if delivery.status is DeliveryState.FAILED and delivery.sent_at is None:
        events.append(StoredEvent("failed", ended, delivery.provider, delivery.last_error))
    if delivery.status is DeliveryState.SUPPRESSED:
        events.append(StoredEvent("suppressed", ended, None, delivery.status_detail))
    if delivery.status is DeliveryState.CANCELLED:
        events.append(StoredEvent("cancelled", ended, None, delivery.status_detail))
    return events
