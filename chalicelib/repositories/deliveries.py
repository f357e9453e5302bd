"""Recording recipient rows and their emails' content; dispatch, reporting and recovery.

Rows are inserted once per (API key, email, recipient) and never deleted: what could not be
queued now is queued later. ``dispatched_at`` says the recipient's message reached the queue:
a queued row without it, whose lease is free, is dispatched again from the stored email
content (a send that died halfway included). Final states carry ``result_pending`` until
their report reached the result queue; ``results_published`` clears it only on the version
of the row that was reported.

The send lease (who may send a row) is ``send_leases``; the status lookup's reads are
``delivery_status``; provider events are ``delivery_events``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from chalicelib.db import Database
from chalicelib.repositories.delivery_rows import (
    COLUMNS,
    KEY_MATCH,
    LEASE_FREE,
    Delivery,
    NewDelivery,
    delivery_from_row,
    select_deliveries,
)
from chalicelib.repositories.key_limits import reserve_recipients

_INSERT_NEW = f"""
INSERT INTO deliveries (id, api_key_id, email_id, email_recipient_id, recipient,
                        recipient_name, recipient_company, status, client_env_id,
                        project_id, closure_id, metadata, queued_at,
                        dispatched_at, test_mode, status_detail, result_pending,
                        template_id, template_version, recipient_params)
SELECT id, %(api_key_id)s, %(email_id)s, rid, recipient, rname, rcompany,
       CASE WHEN sdetail IS NULL THEN 'queued' ELSE 'suppressed' END,
       %(client_env_id)s, %(project_id)s, %(closure_id)s, meta::jsonb,
       coalesce(%(queued_at)s, now()),
       CASE WHEN %(dispatched)s THEN now() END, %(test_mode)s, sdetail,
       sdetail IS NOT NULL, %(template_id)s, %(template_version)s, rparams::jsonb
  FROM unnest(%(ids)s::uuid[], %(recipient_ids)s::text[],
              %(recipients)s::text[], %(names)s::text[],
              %(companies)s::text[], %(metadata)s::text[],
              %(suppressed)s::text[], %(rparams)s::text[])
       AS t(id, rid, recipient, rname, rcompany, meta, sdetail, rparams)
ON CONFLICT DO NOTHING
RETURNING {COLUMNS}
"""


@dataclass(frozen=True)
class DailyCharge:
    """Count inserted rows against this key's recipients today, within ``quota`` (None: no
    quota, counted for the key's figures only)."""

    key_id: uuid.UUID
    quota: int | None


class QuotaExceeded(Exception):
    """The rows would pass the key's daily recipient quota: nothing was recorded."""

    def __init__(self, quota: int | None) -> None:
        super().__init__(f"daily recipient quota {quota} reached")
        self.quota = quota


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
                f"SELECT content FROM emails WHERE {KEY_MATCH} AND email_id = %(email_id)s",
                {"api_key_id": api_key_id, "email_id": email_id},
            ).fetchone()
        assert row is not None  # noqa: S101 - inserted or found in this transaction
        return dict(row["content"])

    def email_content(self, api_key_id: uuid.UUID | None, email_id: str) -> dict[str, Any] | None:
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT content FROM emails WHERE {KEY_MATCH} AND email_id = %(email_id)s",
                {"api_key_id": api_key_id, "email_id": email_id},
            ).fetchone()
        return dict(row["content"]) if row else None

    def insert_new(
        self,
        api_key_id: uuid.UUID | None,
        deliveries: list[NewDelivery],
        *,
        charge: DailyCharge | None = None,
    ) -> dict[str, Delivery]:
        """Insert the recipients not recorded yet; return the rows inserted now, by recipient id.

        All ``deliveries`` belong to one email (the first one's ``email_id`` and pass-through
        fields are used for all). With ``charge``, the rows inserted now are counted against
        the key's daily recipients in the same transaction: when that would pass the quota,
        nothing is inserted or counted and :class:`QuotaExceeded` is raised.
        """
        if not deliveries:
            return {}
        first = deliveries[0]
        params = {
            "ids": [uuid.uuid4() for _ in deliveries],
            "recipient_ids": [d.email_recipient_id for d in deliveries],
            "recipients": [d.recipient for d in deliveries],
            "names": [d.recipient_name for d in deliveries],
            "companies": [d.recipient_company for d in deliveries],
            "metadata": [json.dumps(d.metadata or {}) for d in deliveries],
            "suppressed": [d.suppressed for d in deliveries],
            "rparams": [json.dumps(d.recipient_params or {}) for d in deliveries],
            "test_mode": first.test_mode,
            "api_key_id": api_key_id,
            "email_id": first.email_id,
            "client_env_id": first.client_env_id,
            "project_id": first.project_id,
            "closure_id": first.closure_id,
            "queued_at": first.queued_at,
            "dispatched": first.dispatched,
            "template_id": first.template_id,
            "template_version": first.template_version,
        }
        if charge is None:
            with self._db.statement() as conn:
                rows = conn.execute(_INSERT_NEW, params).fetchall()
        else:
            with self._db.transaction() as conn:
                rows = conn.execute(_INSERT_NEW, params).fetchall()
                if not reserve_recipients(conn, charge.key_id, len(rows), charge.quota):
                    raise QuotaExceeded(charge.quota)
        return {row["email_recipient_id"]: delivery_from_row(row) for row in rows}

    def find_many(
        self, api_key_id: uuid.UUID | None, email_id: str, recipient_ids: list[str]
    ) -> dict[str, Delivery]:
        with self._db.statement() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM deliveries WHERE {KEY_MATCH}"
                " AND email_id = %(email_id)s AND email_recipient_id = ANY(%(rids)s)",
                {"api_key_id": api_key_id, "email_id": email_id, "rids": recipient_ids},
            ).fetchall()
        return {row["email_recipient_id"]: delivery_from_row(row) for row in rows}

    def find(self, api_key_id: uuid.UUID | None, email_id: str, recipient_id: str) -> Delivery:
        found = self.find_many(api_key_id, email_id, [recipient_id])
        return found[recipient_id]

    def get(self, delivery_id: uuid.UUID) -> Delivery | None:
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM deliveries WHERE id = %s",
                (delivery_id,),
            ).fetchone()
        return delivery_from_row(row) if row else None

    def mark_dispatched(self, ids: list[uuid.UUID]) -> None:
        if not ids:
            return
        with self._db.statement() as conn:
            conn.execute(
                "UPDATE deliveries SET dispatched_at = now(), updated_at = now()"
                " WHERE id = ANY(%s) AND dispatched_at IS NULL",
                (ids,),
            )

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
        return select_deliveries(
            self._db, "result_pending ORDER BY updated_at LIMIT %(limit)s", limit=limit
        )

    def undispatched(self, older_than_seconds: float, limit: int) -> list[Delivery]:
        """Queued rows whose message never reached the queue, untouched for a while."""
        return select_deliveries(
            self._db,
            f"status = 'queued' AND dispatched_at IS NULL AND {LEASE_FREE}"
            " AND updated_at < now() - make_interval(secs => %(age)s)"
            " ORDER BY updated_at LIMIT %(limit)s",
            age=older_than_seconds,
            limit=limit,
        )

    def abandoned(self, older_than_seconds: float, limit: int) -> list[Delivery]:
        """Queued rows dispatched long ago with no outcome (their message dead-lettered)."""
        return select_deliveries(
            self._db,
            f"status = 'queued' AND dispatched_at IS NOT NULL AND {LEASE_FREE}"
            " AND dispatched_at < now() - make_interval(secs => %(age)s)"
            " ORDER BY dispatched_at LIMIT %(limit)s",
            age=older_than_seconds,
            limit=limit,
        )
