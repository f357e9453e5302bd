"""SQL for delivery records: one row per recipient of an email.

The state changes are conditional updates, so concurrent senders (two Lambda invocations
holding the same SQS message, the API and the consumer) cannot both send:

- ``claim`` takes a lease on a ``queued`` row whose lease is free; only one caller gets it;
- ``mark_sent`` / ``mark_failed`` only change a ``queued`` row, and set ``result_pending``
  so the outcome reaches the result queue even if publishing fails right after.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.db import Database
from chalicelib.models.mail import DeliveryState


@dataclass(frozen=True)
class NewDelivery:
    email_id: str
    email_recipient_id: str
    recipient: str
    client_env_id: str | None
    project_id: str | None
    closure_id: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    api_key_id: uuid.UUID | None
    email_id: str
    email_recipient_id: str
    recipient: str
    status: DeliveryState
    provider: str | None
    message_id: str | None
    attempts: int
    last_error: str | None
    status_detail: str | None
    client_env_id: str | None
    project_id: str | None
    closure_id: str | None
    metadata: dict[str, str]
    result_pending: bool
    queued_at: datetime
    sent_at: datetime | None


_COLUMNS = (
    "id, api_key_id, email_id, email_recipient_id, recipient, status, provider, message_id,"
    " attempts, last_error, status_detail, client_env_id, project_id, closure_id, metadata,"
    " result_pending, queued_at, sent_at"
)
# Written exactly like the unique index's expression, so lookups use that index.
_NO_KEY_SQL = "'00000000-0000-0000-0000-000000000000'::uuid"
_KEY_MATCH = f"coalesce(api_key_id, {_NO_KEY_SQL}) = coalesce(%(api_key_id)s::uuid, {_NO_KEY_SQL})"


class DeliveryRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def insert_new(self, api_key_id: uuid.UUID | None, deliveries: list[NewDelivery]) -> set[str]:
        """Insert the recipients not recorded yet; return the recipient ids inserted now."""
        if not deliveries:
            return set()
        columns: dict[str, list[Any]] = {
            "ids": [uuid.uuid4() for _ in deliveries],
            "recipient_ids": [d.email_recipient_id for d in deliveries],
            "recipients": [d.recipient for d in deliveries],
            "metadata": [json.dumps(d.metadata) for d in deliveries],
        }
        first = deliveries[0]
        with self._db.transaction() as conn:
            rows = conn.execute(
                """
                INSERT INTO deliveries (id, api_key_id, email_id, email_recipient_id, recipient,
                                        status, client_env_id, project_id, closure_id, metadata)
                SELECT id, %(api_key_id)s, %(email_id)s, rid, recipient, 'queued',
                       %(client_env_id)s, %(project_id)s, %(closure_id)s, meta::jsonb
                  FROM unnest(%(ids)s::uuid[], %(recipient_ids)s::text[],
                              %(recipients)s::text[], %(metadata)s::text[])
                       AS t(id, rid, recipient, meta)
                ON CONFLICT DO NOTHING
                RETURNING email_recipient_id
                """,
                {
                    **columns,
                    "api_key_id": api_key_id,
                    "email_id": first.email_id,
                    "client_env_id": first.client_env_id,
                    "project_id": first.project_id,
                    "closure_id": first.closure_id,
                },
            ).fetchall()
        return {row["email_recipient_id"] for row in rows}

    def find_many(
        self, api_key_id: uuid.UUID | None, email_id: str, recipient_ids: list[str]
    ) -> dict[str, Delivery]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE {_KEY_MATCH}"  # noqa: S608 - constants
                " AND email_id = %(email_id)s AND email_recipient_id = ANY(%(rids)s)",
                {"api_key_id": api_key_id, "email_id": email_id, "rids": recipient_ids},
            ).fetchall()
        return {row["email_recipient_id"]: _delivery(row) for row in rows}

    def find(self, api_key_id: uuid.UUID | None, email_id: str, recipient_id: str) -> Delivery:
        found = self.find_many(api_key_id, email_id, [recipient_id])
        return found[recipient_id]

    def delete_queued(self, ids: list[uuid.UUID]) -> None:
        """Forget records that never reached the queue (the caller is told to try again)."""
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM deliveries WHERE id = ANY(%s) AND status = 'queued'"
                " AND lease_until IS NULL",
                (ids,),
            )

    def claim(self, delivery_id: uuid.UUID, lease_seconds: float) -> Delivery | None:
        """Take the send lease on a queued record; None when sent, failed or leased."""
        return self._update_one(
            "lease_until = now() + make_interval(secs => %(lease)s), attempts = attempts + 1",
            "status = 'queued' AND (lease_until IS NULL OR lease_until < now())",
            delivery_id,
            lease=lease_seconds,
        )

    def release(self, delivery_id: uuid.UUID, last_error: str) -> Delivery | None:
        """Give the lease back after a transient failure; the record stays queued."""
        return self._update_one(
            "lease_until = NULL, last_error = %(error)s",
            "status = 'queued'",
            delivery_id,
            error=last_error,
        )

    def mark_sent(self, delivery_id: uuid.UUID, provider: str, message_id: str) -> Delivery | None:
        return self._update_one(
            "status = 'sent', provider = %(provider)s, message_id = %(message_id)s,"
            " sent_at = now(), lease_until = NULL, last_error = NULL, result_pending = true",
            "status = 'queued'",
            delivery_id,
            provider=provider,
            message_id=message_id,
        )

    def mark_failed(
        self,
        delivery_id: uuid.UUID,
        last_error: str,
        detail: str,
        provider: str | None = None,
        *,
        only_if_unleased: bool = False,
    ) -> Delivery | None:
        """Fail a queued record. ``only_if_unleased``: not while someone holds its lease."""
        condition = "status = 'queued'"
        if only_if_unleased:
            condition += " AND (lease_until IS NULL OR lease_until < now())"
        return self._update_one(
            "status = 'failed', last_error = %(error)s, status_detail = %(detail)s,"
            " provider = coalesce(%(provider)s, provider), lease_until = NULL,"
            " result_pending = true",
            condition,
            delivery_id,
            error=last_error,
            detail=detail,
            provider=provider,
        )

    def result_published(self, delivery_id: uuid.UUID) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET result_pending = false WHERE id = %s", (delivery_id,)
            )

    def pending_results(self, limit: int) -> list[Delivery]:
        """Outcomes whose report did not reach the result queue yet, oldest first."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE result_pending"  # noqa: S608
                " ORDER BY updated_at LIMIT %s",
                (limit,),
            ).fetchall()
        return [_delivery(row) for row in rows]

    def _update_one(
        self, assignments: str, condition: str, delivery_id: uuid.UUID, **params: Any
    ) -> Delivery | None:
        with self._db.transaction() as conn:
            row = conn.execute(
                f"UPDATE deliveries SET {assignments}, updated_at = now()"  # noqa: S608
                f" WHERE id = %(id)s AND {condition} RETURNING {_COLUMNS}",
                {**params, "id": delivery_id},
            ).fetchone()
        return _delivery(row) if row else None


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(
        id=row["id"],
        api_key_id=row["api_key_id"],
        email_id=row["email_id"],
        email_recipient_id=row["email_recipient_id"],
        recipient=row["recipient"],
        status=DeliveryState(row["status"]),
        provider=row["provider"],
        message_id=row["message_id"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        status_detail=row["status_detail"],
        client_env_id=row["client_env_id"],
        project_id=row["project_id"],
        closure_id=row["closure_id"],
        metadata=dict(row["metadata"] or {}),
        result_pending=row["result_pending"],
        queued_at=row["queued_at"],
        sent_at=row["sent_at"],
    )
