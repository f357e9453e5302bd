"""The send lease of recipient rows: who may send a row, and what became of the send.

The state changes are conditional updates, so concurrent senders (the API, any number of
consumers, SQS redelivering a message) cannot both send:

- ``claim_keys`` takes the send lease on the ``queued`` rows whose lease is free, each with a
  new ``lease_token``; only one caller gets a row; a row of a cancelled campaign is not
  leased but ``cancelled`` there and then (so nothing of a campaign is handed to a provider
  once its cancel is answered);
- ``settle_many`` changes a row only for its token's holder (a sender whose lease expired
  cannot undo its successor's work); ``mark_failed`` only a row nobody holds;
- final states set ``result_pending`` in the same update, so the outcome reaches the result
  queue even if publishing fails right after.

A batch costs one statement per step (find and claim, settle), not one per recipient.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chalicelib.db import Database
from chalicelib.models.mail import DeliveryState
from chalicelib.repositories.delivery_rows import (
    D_COLUMNS,
    LEASE_FREE,
    NO_KEY_SQL,
    Delivery,
    JobKey,
    delivery_from_row,
    key_of,
    update_one,
)


@dataclass(frozen=True)
class Claim:
    """A recipient row as ``claim_keys`` found it: ``taken`` when this caller now holds its
    send lease; ``listed`` is the suppression list's reason when its address is on it."""

    delivery: Delivery
    taken: bool
    listed: str | None


@dataclass(frozen=True)
class Settlement:
    """What became of a leased row: ``sent``, ``failed``, ``suppressed`` (not sent), or
    ``queued`` (the lease is given back after a transient failure, ``error`` noted)."""

    held: Delivery
    status: DeliveryState
    provider: str | None = None
    message_id: str | None = None
    error: str | None = None
    detail: str | None = None


class SendLeaseRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def claim_keys(self, keys: list[JobKey], lease_seconds: float) -> dict[JobKey, Claim]:
        """Find recipients' rows, take the send lease of those queued and not leased (each
        with its own token), and look their addresses up on the suppression list: one
        statement for the batch. Keys without a row are absent from the result.

        A listed address's row is taken too (its holder records it ``suppressed``), without
        counting a send attempt.
        """
        if not keys:
            return {}
        with self._db.statement() as conn:
            rows = conn.execute(
                f"""
                WITH wanted AS (
                    SELECT DISTINCT d.id
                      FROM unnest(%(keys)s::uuid[], %(emails)s::text[], %(rids)s::text[])
                           AS t(key_id, email, rid)
                      JOIN deliveries d
                        ON coalesce(d.api_key_id, {NO_KEY_SQL})
                           = coalesce(t.key_id, {NO_KEY_SQL})
                       AND d.email_id = t.email AND d.email_recipient_id = t.rid
                ), cancelled AS (
                    UPDATE deliveries d
                       SET status = 'cancelled', status_detail = 'campaign_cancelled',
                           result_pending = true, updated_at = now()
                      FROM wanted w, campaigns c
                     WHERE d.id = w.id AND d.status = 'queued' AND {LEASE_FREE}
                       AND c.id = d.campaign_id AND c.status = 'cancelled'
                    RETURNING {D_COLUMNS}
                ), taken AS (
                    UPDATE deliveries d
                       SET lease_until = now() + make_interval(secs => %(lease)s),
                           attempts = d.attempts + CASE WHEN EXISTS (
                               SELECT 1 FROM suppressions s WHERE s.address = lower(d.recipient)
                           ) THEN 0 ELSE 1 END,
                           lease_token = gen_random_uuid(),
                           updated_at = now()
                      FROM wanted w
                     WHERE d.id = w.id AND d.status = 'queued' AND {LEASE_FREE}
                       AND NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = d.campaign_id
                                       AND c.status = 'cancelled')
                    RETURNING {D_COLUMNS}
                ), found AS (
                    SELECT {D_COLUMNS}, true AS taken FROM taken d
                    UNION ALL
                    SELECT {D_COLUMNS}, false AS taken FROM cancelled d
                    UNION ALL
                    SELECT {D_COLUMNS}, false AS taken
                      FROM deliveries d JOIN wanted w ON w.id = d.id
                     WHERE d.id NOT IN (SELECT id FROM taken)
                       AND d.id NOT IN (SELECT id FROM cancelled)
                )
                SELECT f.*, s.reason AS listed
                  FROM found f LEFT JOIN suppressions s ON s.address = lower(f.recipient)
                """,
                {
                    "keys": [k[0] for k in keys],
                    "emails": [k[1] for k in keys],
                    "rids": [k[2] for k in keys],
                    "lease": lease_seconds,
                },
            ).fetchall()
        claims = [Claim(delivery_from_row(row), row["taken"], row["listed"]) for row in rows]
        return {key_of(c.delivery): c for c in claims}

    def settle_many(self, settlements: list[Settlement]) -> dict[uuid.UUID, Delivery]:
        """Record the outcomes of leased sends in one statement; the rows changed, by id.

        A row changes only while its lease token is the one the sender holds: one whose
        lease expired and was taken by another sender is left alone (absent from the result).
        """
        if not settlements:
            return {}
        with self._db.statement() as conn:
            rows = conn.execute(
                f"""
                UPDATE deliveries d
                   SET status = t.status,
                       provider = coalesce(t.provider, d.provider),
                       message_id = CASE WHEN t.status = 'sent' THEN t.message_id
                                         ELSE d.message_id END,
                       sent_at = CASE WHEN t.status = 'sent' THEN now() ELSE d.sent_at END,
                       last_error = t.error,
                       status_detail = CASE WHEN t.status IN ('failed', 'suppressed')
                                            THEN t.detail ELSE d.status_detail END,
                       lease_until = NULL,
                       lease_token = NULL,
                       result_pending = d.result_pending OR t.status <> 'queued',
                       updated_at = now()
                  FROM unnest(%(ids)s::uuid[], %(tokens)s::uuid[], %(statuses)s::text[],
                              %(providers)s::text[], %(message_ids)s::text[],
                              %(errors)s::text[], %(details)s::text[])
                       AS t(id, token, status, provider, message_id, error, detail)
                 WHERE d.id = t.id AND d.status = 'queued' AND d.lease_token = t.token
                RETURNING {D_COLUMNS}
                """,
                {
                    "ids": [s.held.id for s in settlements],
                    "tokens": [s.held.lease_token for s in settlements],
                    "statuses": [s.status.value for s in settlements],
                    "providers": [s.provider for s in settlements],
                    "message_ids": [s.message_id for s in settlements],
                    "errors": [s.error for s in settlements],
                    "details": [s.detail for s in settlements],
                },
            ).fetchall()
        return {row["id"]: delivery_from_row(row) for row in rows}

    def record_sent(
        self, delivery_id: uuid.UUID, provider: str, message_id: str
    ) -> Delivery | None:
        """Record a send from a receipt: on the queued row, whoever holds its lease now."""
        return update_one(
            self._db,
            "status = 'sent', provider = %(provider)s, message_id = %(message_id)s,"
            " sent_at = now(), lease_until = NULL, lease_token = NULL, last_error = NULL,"
            " result_pending = true",
            "status = 'queued'",
            delivery_id,
            provider=provider,
            message_id=message_id,
        )

    def mark_failed(self, delivery: Delivery, last_error: str, detail: str) -> Delivery | None:
        """Fail a queued record nobody holds (its lease is free): given up, or malformed."""
        return update_one(
            self._db,
            "status = 'failed', last_error = %(error)s, status_detail = %(detail)s,"
            " lease_until = NULL, lease_token = NULL, result_pending = true",
            f"status = 'queued' AND {LEASE_FREE}",
            delivery.id,
            error=last_error,
            detail=detail,
        )
