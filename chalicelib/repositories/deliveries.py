"""SQL for delivery records (one row per recipient of an email) and the emails' content.

The state changes are conditional updates, so concurrent senders (the API, any number of
consumers, SQS redelivering a message) cannot both send:

- ``claim_keys`` takes the send lease on the ``queued`` rows whose lease is free, each with a
  new ``lease_token``; only one caller gets a row;
- ``settle_many`` changes a row only for its token's holder (a sender whose lease expired
  cannot undo its successor's work); ``mark_failed`` only a row nobody holds;
- final states set ``result_pending`` in the same update, so the outcome reaches the result
  queue even if publishing fails right after; ``results_published`` clears it only on the
  version of the row that was reported.

A batch of recipients costs one statement per step (find and claim, settle, mark reported),
not one per recipient: a round trip to the database costs more than the statement.

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


JobKey = tuple[uuid.UUID | None, str, str]
"""A recipient row's identity: (api_key_id, email_id, email_recipient_id)."""


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


_COLUMN_NAMES = (
    "id",
    "api_key_id",
    "email_id",
    "email_recipient_id",
    "recipient",
    "recipient_name",
    "recipient_company",
    "status",
    "provider",
    "message_id",
    "attempts",
    "last_error",
    "status_detail",
    "client_env_id",
    "project_id",
    "closure_id",
    "metadata",
    "result_pending",
    "queued_at",
    "sent_at",
    "dispatched_at",
    "lease_token",
    "test_mode",
    "updated_at",
)
_COLUMNS = ", ".join(_COLUMN_NAMES)
_D_COLUMNS = ", ".join(f"d.{name}" for name in _COLUMN_NAMES)
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
                        ON coalesce(d.api_key_id, {_NO_KEY_SQL})
                           = coalesce(t.key_id, {_NO_KEY_SQL})
                       AND d.email_id = t.email AND d.email_recipient_id = t.rid
                ), taken AS (
                    UPDATE deliveries d
                       SET lease_until = now() + make_interval(secs => %(lease)s),
                           attempts = d.attempts + CASE WHEN EXISTS (
                               SELECT 1 FROM suppressions s WHERE s.address = lower(d.recipient)
                           ) THEN 0 ELSE 1 END,
                           lease_token = gen_random_uuid(),
                           updated_at = now()
                      FROM wanted w
                     WHERE d.id = w.id AND d.status = 'queued' AND {_LEASE_FREE}
                    RETURNING {_D_COLUMNS}
                ), found AS (
                    SELECT {_D_COLUMNS}, true AS taken FROM taken d
                    UNION ALL
                    SELECT {_D_COLUMNS}, false AS taken
                      FROM deliveries d JOIN wanted w ON w.id = d.id
                     WHERE d.id NOT IN (SELECT id FROM taken)
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
        claims = [Claim(_delivery(row), row["taken"], row["listed"]) for row in rows]
        return {_key_of(c.delivery): c for c in claims}

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
                RETURNING {_D_COLUMNS}
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
        return {row["id"]: _delivery(row) for row in rows}

    def record_sent(
        self, delivery_id: uuid.UUID, provider: str, message_id: str
    ) -> Delivery | None:
        """Record a send from a receipt: on the queued row, whoever holds its lease now."""
        return self._update_one(
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
        return self._update_one(
            "status = 'failed', last_error = %(error)s, status_detail = %(detail)s,"
            " lease_until = NULL, lease_token = NULL, result_pending = true",
            f"status = 'queued' AND {_LEASE_FREE}",
            delivery.id,
            error=last_error,
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

    def results_published(self, reported: list[Delivery]) -> None:
        """Clear ``result_pending`` on the rows reported, if they did not change since: a row
        that moved on meanwhile (an event arrived) keeps its newer report pending.

        The commit does not wait for the disk (``synchronous_commit`` off for this one
        transaction): should a server crash lose it, the reports are only published again.
        """
        if not reported:
            return
        with self._db.statement() as conn:
            conn.execute(
                "WITH no_disk_wait AS (SELECT set_config('synchronous_commit', 'off', true))"
                " UPDATE deliveries d SET result_pending = false"
                " FROM unnest(%s::uuid[], %s::timestamptz[]) AS t(id, updated_at), no_disk_wait"
                " WHERE d.id = t.id AND d.updated_at IS NOT DISTINCT FROM t.updated_at",
                ([d.id for d in reported], [d.updated_at for d in reported]),
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


def _key_of(delivery: Delivery) -> JobKey:
    return (delivery.api_key_id, delivery.email_id, delivery.email_recipient_id)


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
