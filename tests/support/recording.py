"""Recipient rows in a known state, written through the repositories (no provider call)."""

from __future__ import annotations

import uuid

from chalicelib.bootstrap import Container
from chalicelib.models.mail import DeliveryState
from chalicelib.repositories.delivery_rows import Delivery, JobKey, NewDelivery
from chalicelib.repositories.send_leases import SendLeaseRepository, Settlement


def lease(repo: SendLeaseRepository, key: JobKey, seconds: float = 60) -> Delivery | None:
    """Take the send lease of one recipient's row, as a sender does; None if not taken."""
    claim = repo.claim_keys([key], seconds).get(key)
    return claim.delivery if claim and claim.taken else None


def settle(
    repo: SendLeaseRepository, held: Delivery, status: DeliveryState, **fields: str
) -> Delivery | None:
    """Record what became of a leased row, as its sender does; None if the lease is not held."""
    return repo.settle_many([Settlement(held, status, **fields)]).get(held.id)


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
    claimed = lease(services.leases, (api_key_id, email_id, rows[recipient].email_recipient_id))
    assert claimed is not None
    sent = settle(
        services.leases, claimed, DeliveryState.SENT, provider="fake", message_id=message_id
    )
    assert sent is not None
    return sent
