"""Recipient rows in a known state, written through the repositories (no provider call)."""

from __future__ import annotations

import uuid

from chalicelib.bootstrap import Container
from chalicelib.repositories.deliveries import Delivery, NewDelivery


def record_sent(
    services: Container,
    recipient: str,
    message_id: str,
    *,
    email_id: str = "news-1",
    api_key_id: uuid.UUID | None = None,
    test_mode: bool = False,
) -> Delivery:
    """A recipient of ``email_id`` that a provider accepted as ``message_id``."""
    repo = services.deliveries
    rows = repo.insert_new(
        api_key_id,
        [
            NewDelivery(
                email_id=email_id,
                email_recipient_id=recipient,
                recipient=recipient,
                dispatched=True,
                test_mode=test_mode,
            )
        ],
    )
    claimed = repo.claim(rows[recipient].id, lease_seconds=60)
    assert claimed is not None
    sent = repo.mark_sent(claimed, "fake", message_id)
    assert sent is not None
    return sent
