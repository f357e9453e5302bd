"""Applying one provider event (SPEC 9) to the recipient rows sent as its message id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.db import Database
from chalicelib.models.mail import DeliveryState
from chalicelib.repositories.delivery_rows import COLUMNS, Delivery, delivery_from_row


@dataclass(frozen=True)
class EventApplied:
    """What one provider event did to one recipient row."""

    delivery: Delivery  # the row after the event
    new: bool  # the event was not stored before (False: a duplicate)
    changed: bool  # the status changed (and a report is pending)


class DeliveryEventRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

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
                f"SELECT {COLUMNS} FROM deliveries WHERE message_id = %s ORDER BY id FOR UPDATE",
                (message_id,),
            ).fetchall()
            for row in rows:
                delivery = delivery_from_row(row)
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
                        f" WHERE id = %s RETURNING {COLUMNS}",
                        (moves_to.value, detail, delivery.id),
                    ).fetchone()
                applied.append(
                    EventApplied(
                        delivery_from_row(moved) if moved else delivery,
                        new=inserted is not None,
                        changed=moved is not None,
                    )
                )
        return applied
