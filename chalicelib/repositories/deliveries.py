"""SQL for delivery records (one row per recipient of an email) and the emails' content.

The state changes are conditional updates, so concurrent senders (the API, any number of
consumers, SQS redelivering a message) cannot both send:

- ``claim`` takes the send lease on a ``queued`` row whose lease is free and returns a new
  ``lease_token``; only one caller gets it;
- ``release``, ``mark_sent`` and ``mark_failed`` change the row only for the token's holder
  (a sender whose lease expired cannot undo its successor's work);
- final states set ``result_pending`` in the same update, so the outcome reaches the result
  queue even if publishing fails right after.

``dispatched_at`` says the recipient's message reached the queue: a queued row without it,
whose lease is free, is dispatched again from the stored email content (a send that died
halfway included). Rows are never deleted: what could not be queued now is queued later.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from chalicelib.db import Database
from chalicelib.models.mail import DeliveryState


@dataclass(frozen=True)
class NewDelivery:
    email_id: str
    email_recipient_id: str
    recipient: str
    client_env_id: str | None = None
    project_id: str | None = None
    closure_id: str | None = None
    metadata: dict[str, str] | None = None
    recipient_name: str | None = None
    recipient_company: str | None = None
    queued_at: datetime | None = None
    dispatched: bool = False
    test_mode: bool = False
    # Recorded as ``suppressed`` (this detail says why) instead of ``queued``: never sent.
    suppressed: str | None = None


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    api_key_id: uuid.UUID | None
    email_id: str
    email_recipient_id: str
    recipient: str
    recipient_name: str | None
    recipient_company: str | None
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
    dispatched_at: datetime | None
    lease_token: uuid.UUID | None
    test_mode: bool = False
    updated_at: datetime | None = None


@dataclass(frozen=True)
class StoredEvent:
    type: str
    at: datetime
    provider: str | None
    detail: str | None


@dataclass(frozen=True)
class EventApplied:
    """What one provider event did to one recipient row."""

    delivery: Delivery  # the row after the event
    new: bool  # the event was not stored before (False: a duplicate)
    changed: bool  # the status changed (and a report is pending)


_COLUMNS = (
    "id, api_key_id, email_id, email_recipient_id, recipient, recipient_name,"
    " recipient_company, status, provider, message_id, attempts, last_error, status_detail,"
    " client_env_id, project_id, closure_id, metadata, result_pending, queued_at, sent_at,"
    " dispatched_at, lease_token, test_mode, updated_at"
)
# Written exactly like the unique indexes' expression, so lookups use those indexes.
_NO_KEY_SQL = "'00000000-0000-0000-0000-000000000000'::uuid"
_KEY_MATCH = f"coalesce(api_key_id, {_NO_KEY_SQL}) = coalesce(%(api_key_id)s::uuid, {_NO_KEY_SQL})"
_LEASE_FREE = "(lease_until IS NULL OR lease_until < now())"


class DeliveryRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    # --- recording -------------------------------------------------------------------

    def save_email(
        self, api_key_id: uuid.UUID | None, email_id: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        """Keep an email's content (first write wins); return the content stored for it."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO emails (id, api_key_id, email_id, content)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (uuid.uuid4(), api_key_id, email_id, Jsonb(content)),
            )
            row = conn.execute(
                f"SELECT content FROM emails WHERE {_KEY_MATCH} AND email_id = %(email_id)s",
                {"api_key_id": api_key_id, "email_id": email_id},
            ).fetchone()
        assert row is not None  # noqa: S101 - inserted or found in this transaction
        return dict(row["content"])

    def email_content(self, api_key_id: uuid.UUID | None, email_id: str) -> dict[str, Any] | None:
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT content FROM emails WHERE {_KEY_MATCH} AND email_id = %(email_id)s",
                {"api_key_id": api_key_id, "email_id": email_id},
            ).fetchone()
        return dict(row["content"]) if row else None

    def insert_new(
        self, api_key_id: uuid.UUID | None, deliveries: list[NewDelivery]
    ) -> dict[str, Delivery]:
        """Insert the recipients not recorded yet; return the rows inserted now, by recipient id.

        All ``deliveries`` belong to one email (the first one's ``email_id`` and pass-through
        fields are used for all).
        """
        if not deliveries:
            return {}
        first = deliveries[0]
        with self._db.statement() as conn:
            rows = conn.execute(
                f"""
                INSERT INTO deliveries (id, api_key_id, email_id, email_recipient_id, recipient,
                                        recipient_name, recipient_company, status, client_env_id,
                                        project_id, closure_id, metadata, queued_at,
                                        dispatched_at, test_mode, status_detail, result_pending)
                SELECT id, %(api_key_id)s, %(email_id)s, rid, recipient, rname, rcompany,
                       CASE WHEN sdetail IS NULL THEN 'queued' ELSE 'suppressed' END,
                       %(client_env_id)s, %(project_id)s, %(closure_id)s, meta::jsonb,
                       coalesce(%(queued_at)s, now()),
                       CASE WHEN %(dispatched)s THEN now() END, %(test_mode)s, sdetail,
                       sdetail IS NOT NULL
                  FROM unnest(%(ids)s::uuid[], %(recipient_ids)s::text[],
                              %(recipients)s::text[], %(names)s::text[],
                              %(companies)s::text[], %(metadata)s::text[],
                              %(suppressed)s::text[])
                       AS t(id, rid, recipient, rname, rcompany, meta, sdetail)
                ON CONFLICT DO NOTHING
                RETURNING {_COLUMNS}
                """,
                {
                    "ids": [uuid.uuid4() for _ in deliveries],
                    "recipient_ids": [d.email_recipient_id for d in deliveries],
                    "recipients": [d.recipient for d in deliveries],
                    "names": [d.recipient_name for d in deliveries],
                    "companies": [d.recipient_company for d in deliveries],
                    "metadata": [json.dumps(d.metadata or {}) for d in deliveries],
                    "suppressed": [d.suppressed for d in deliveries],
                    "test_mode": first.test_mode,
                    "api_key_id": api_key_id,
                    "email_id": first.email_id,
                    "client_env_id": first.client_env_id,
                    "project_id": first.project_id,
                    "closure_id": first.closure_id,
                    "queued_at": first.queued_at,
                    "dispatched": first.dispatched,
                },
            ).fetchall()
        return {row["email_recipient_id"]: _delivery(row) for row in rows}

    def find_many(
        self, api_key_id: uuid.UUID | None, email_id: str, recipient_ids: list[str]
    ) -> dict[str, Delivery]:
        with self._db.statement() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE {_KEY_MATCH}"
                " AND email_id = %(email_id)s AND email_recipient_id = ANY(%(rids)s)",
                {"api_key_id": api_key_id, "email_id": email_id, "rids": recipient_ids},
            ).fetchall()
        return {row["email_recipient_id"]: _delivery(row) for row in rows}

    def find(self, api_key_id: uuid.UUID | None, email_id: str, recipient_id: str) -> Delivery:
        found = self.find_many(api_key_id, email_id, [recipient_id])
        return found[recipient_id]

    def get(self, delivery_id: uuid.UUID) -> Delivery | None:
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE id = %s",
                (delivery_id,),
            ).fetchone()
        return _delivery(row) if row else None

    def mark_dispatched(self, ids: list[uuid.UUID]) -> None:
        if not ids:
            return
        with self._db.statement() as conn:
            conn.execute(
                "UPDATE deliveries SET dispatched_at = now(), updated_at = now()"
                " WHERE id = ANY(%s) AND dispatched_at IS NULL",
                (ids,),
            )

    # --- sending ---------------------------------------------------------------------

    def claim(self, delivery_id: uuid.UUID, lease_seconds: float) -> Delivery | None:
        """Take the send lease on a queued record; None when sent, failed or leased."""
        return self._update_one(
            "lease_until = now() + make_interval(secs => %(lease)s), attempts = attempts + 1,"
            " lease_token = %(token)s",
            f"status = 'queued' AND {_LEASE_FREE}",
            delivery_id,
            lease=lease_seconds,
            token=uuid.uuid4(),
        )

    def release(self, held: Delivery, last_error: str) -> Delivery | None:
        """Give the lease back after a transient failure; the record stays queued."""
        return self._update_one(
            "lease_until = NULL, lease_token = NULL, last_error = %(error)s",
            "status = 'queued' AND lease_token = %(token)s",
            held.id,
            error=last_error,
            token=held.lease_token,
        )

    def mark_sent(self, held: Delivery, provider: str, message_id: str) -> Delivery | None:
        return self.record_sent(held.id, provider, message_id, lease_token=held.lease_token)

    def record_sent(
        self,
        delivery_id: uuid.UUID,
        provider: str,
        message_id: str,
        *,
        lease_token: uuid.UUID | None = None,
    ) -> Delivery | None:
        """Record a send. With a token only for its holder; without (a receipt), any queued row."""
        condition = "status = 'queued'"
        if lease_token is not None:
            condition += " AND lease_token = %(token)s"
        return self._update_one(
            "status = 'sent', provider = %(provider)s, message_id = %(message_id)s,"
            " sent_at = now(), lease_until = NULL, lease_token = NULL, last_error = NULL,"
            " result_pending = true",
            condition,
            delivery_id,
            provider=provider,
            message_id=message_id,
            token=lease_token,
        )

    def mark_failed(
        self,
        delivery: Delivery,
        last_error: str,
        detail: str,
        provider: str | None = None,
        *,
        as_holder: bool,
    ) -> Delivery | None:
        """Fail a queued record: as the lease holder, or (``as_holder=False``) only if unleased."""
        condition = "status = 'queued' AND " + (
            "lease_token = %(token)s" if as_holder else _LEASE_FREE
        )
        return self._update_one(
            "status = 'failed', last_error = %(error)s, status_detail = %(detail)s,"
            " provider = coalesce(%(provider)s, provider), lease_until = NULL,"
            " lease_token = NULL, result_pending = true",
            condition,
            delivery.id,
            error=last_error,
            detail=detail,
            provider=provider,
            token=delivery.lease_token,
        )

    def mark_suppressed(self, delivery: Delivery, detail: str) -> Delivery | None:
        """Record that a queued, unleased recipient is on the suppression list: never sent."""
        return self._update_one(
            "status = 'suppressed', status_detail = %(detail)s, result_pending = true",
            f"status = 'queued' AND {_LEASE_FREE}",
            delivery.id,
            detail=detail,
        )

    # --- status lookup -------------------------------------------------------------------

    def page(
        self,
        api_key_id: uuid.UUID,
        email_id: str,
        *,
        status: DeliveryState | None,
        after: str | None,
        limit: int,
    ) -> list[Delivery]:
        """One page of an email's recipients in recipient-id order (keyset: ``after``)."""
        return self._select(
            f"{_KEY_MATCH} AND email_id = %(email_id)s"
            " AND (%(after)s::text IS NULL OR email_recipient_id > %(after)s)"
            " AND (%(status)s::text IS NULL OR status = %(status)s)"
            " ORDER BY email_recipient_id LIMIT %(limit)s",
            api_key_id=api_key_id,
            email_id=email_id,
            after=after,
            status=status.value if status else None,
            limit=limit,
        )

    def count(self, api_key_id: uuid.UUID, email_id: str, status: DeliveryState | None) -> int:
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT count(*) AS n FROM deliveries WHERE {_KEY_MATCH}"
                " AND email_id = %(email_id)s"
                " AND (%(status)s::text IS NULL OR status = %(status)s)",
                {
                    "api_key_id": api_key_id,
                    "email_id": email_id,
                    "status": status.value if status else None,
                },
            ).fetchone()
        return int(row["n"]) if row else 0

    def events_of(self, delivery_id: uuid.UUID, limit: int = 1000) -> list[StoredEvent]:
        """A recipient's stored provider events, oldest first."""
        with self._db.statement() as conn:
            rows = conn.execute(
                "SELECT type, at, provider, detail FROM delivery_events"
                " WHERE delivery_id = %s ORDER BY at, id LIMIT %s",
                (delivery_id, limit),
            ).fetchall()
        return [StoredEvent(r["type"], r["at"], r["provider"], r["detail"]) for r in rows]

    def by_message_ids(self, message_ids: list[str]) -> dict[str, Delivery]:
        """The recipient rows sent with these provider message ids (the dev outbox)."""
        rows = self._select("message_id = ANY(%(ids)s)", ids=message_ids)
        return {row.message_id or "": row for row in rows}

    # --- provider events -----------------------------------------------------------------

    def apply_event(
        self,
        message_id: str,
        *,
        event_type: str,
        at: datetime,
        provider: str,
        detail: str | None,
        event_key: str,
        concerns: Callable[[Delivery], bool],
        moves_to: DeliveryState | None,
        moves_from: frozenset[DeliveryState],
    ) -> list[EventApplied]:
        """Store one provider event on each row sent as ``message_id``, and move its status.

        One transaction, rows locked: the event is stored once per row (``event_key``), and
        the status moves only from ``moves_from`` and only for rows the event ``concerns``,
        with the report marked pending in the same update. Unknown message ids: [].
        """
        applied: list[EventApplied] = []
        with self._db.transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE message_id = %s ORDER BY id FOR UPDATE",
                (message_id,),
            ).fetchall()
            for row in rows:
                delivery = _delivery(row)
                inserted = conn.execute(
                    "INSERT INTO delivery_events (delivery_id, type, at, provider, detail,"
                    " event_key) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (delivery_id, event_key) DO NOTHING RETURNING id",
                    (delivery.id, event_type, at, provider, detail, event_key),
                ).fetchone()
                moved = None
                if (
                    inserted is not None
                    and moves_to is not None
                    and delivery.status in moves_from
                    and concerns(delivery)
                ):
                    moved = conn.execute(
                        f"UPDATE deliveries SET status = %s, status_detail = %s,"
                        f" result_pending = true, updated_at = now()"
                        f" WHERE id = %s RETURNING {_COLUMNS}",
                        (moves_to.value, detail, delivery.id),
                    ).fetchone()
                applied.append(
                    EventApplied(
                        _delivery(moved) if moved else delivery,
                        new=inserted is not None,
                        changed=moved is not None,
                    )
                )
        return applied

    # --- reporting and recovery ----------------------------------------------------------

    def result_published(self, delivery_id: uuid.UUID) -> None:
        with self._db.statement() as conn:
            conn.execute(
                "UPDATE deliveries SET result_pending = false WHERE id = %s", (delivery_id,)
            )

    def pending_results(self, limit: int) -> list[Delivery]:
        """Outcomes whose report did not reach the result queue yet, oldest first."""
        return self._select("result_pending ORDER BY updated_at LIMIT %(limit)s", limit=limit)

    def undispatched(self, older_than_seconds: float, limit: int) -> list[Delivery]:
        """Queued rows whose message never reached the queue, untouched for a while."""
        return self._select(
            f"status = 'queued' AND dispatched_at IS NULL AND {_LEASE_FREE}"
            " AND updated_at < now() - make_interval(secs => %(age)s)"
            " ORDER BY updated_at LIMIT %(limit)s",
            age=older_than_seconds,
            limit=limit,
        )

    def abandoned(self, older_than_seconds: float, limit: int) -> list[Delivery]:
        """Queued rows dispatched long ago with no outcome (their message dead-lettered)."""
        return self._select(
            f"status = 'queued' AND dispatched_at IS NOT NULL AND {_LEASE_FREE}"
            " AND dispatched_at < now() - make_interval(secs => %(age)s)"
            " ORDER BY dispatched_at LIMIT %(limit)s",
            age=older_than_seconds,
            limit=limit,
        )

    def _select(self, where: str, **params: Any) -> list[Delivery]:
        with self._db.statement() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE {where}",
                params,
            ).fetchall()
        return [_delivery(row) for row in rows]

    def _update_one(
        self, assignments: str, condition: str, delivery_id: uuid.UUID, **params: Any
    ) -> Delivery | None:
        with self._db.statement() as conn:
            row = conn.execute(
                f"UPDATE deliveries SET {assignments}, updated_at = now()"
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
        recipient_name=row["recipient_name"],
        recipient_company=row["recipient_company"],
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
        dispatched_at=row["dispatched_at"],
        lease_token=row["lease_token"],
        test_mode=row["test_mode"],
        updated_at=row["updated_at"],
    )
