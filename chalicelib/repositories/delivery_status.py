"""Reads for the status lookup (SPEC 9): an email's recipients page by page, their counts,
and a recipient's stored provider events. Nothing here writes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from chalicelib.db import Database
from chalicelib.models.mail import DeliveryState
from chalicelib.repositories.delivery_rows import KEY_MATCH, Delivery, select_deliveries


@dataclass(frozen=True)
class StoredEvent:
    type: str
    at: datetime
    provider: str | None
    detail: str | None


class DeliveryStatusRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

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
        return select_deliveries(
            self._db,
            f"{KEY_MATCH} AND email_id = %(email_id)s"
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
                f"SELECT count(*) AS n FROM deliveries WHERE {KEY_MATCH}"
                " AND email_id = %(email_id)s"
                " AND (%(status)s::text IS NULL OR status = %(status)s)",
                {
                    "api_key_id": api_key_id,
                    "email_id": email_id,
                    "status": status.value if status else None,
                },
            ).fetchone()
        return int(row["n"]) if row else 0

    def recipient(
        self, api_key_id: uuid.UUID, email_id: str, email_recipient_id: str
    ) -> Delivery | None:
        """One recipient's row, or None."""
        rows = select_deliveries(
            self._db,
            f"{KEY_MATCH} AND email_id = %(email_id)s AND email_recipient_id = %(rid)s",
            api_key_id=api_key_id,
            email_id=email_id,
            rid=email_recipient_id,
        )
        return rows[0] if rows else None

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
        rows = select_deliveries(self._db, "message_id = ANY(%(ids)s)", ids=message_ids)
        return {row.message_id or "": row for row in rows}
