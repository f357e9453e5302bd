"""SQL for send-rate slots: one row per provider, shared by every process (see 0006)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.db import Database


@dataclass(frozen=True)
class Slot:
    """A reserved send time, and the database's clock when it was reserved."""

    at: datetime
    now: datetime

    @property
    def wait_seconds(self) -> float:
        return max(0.0, (self.at - self.now).total_seconds())


class SendSlotRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def reserve(
        self, provider: str, spacing_seconds: float, max_wait_seconds: float
    ) -> Slot | None:
        """Reserve ``provider``'s next send slot; None when it is more than
        ``max_wait_seconds`` away (the budget is full for now)."""
        slots = self.reserve_many(provider, spacing_seconds, max_wait_seconds, 1)
        return slots[0] if slots else None

    def reserve_many(
        self, provider: str, spacing_seconds: float, max_wait_seconds: float, count: int
    ) -> list[Slot]:
        """Reserve ``count`` consecutive send slots of ``provider``, ``spacing_seconds`` apart
        and after the previous reservation's, or none (``[]``) unless the last of them is at
        most ``max_wait_seconds`` away.

        One statement, the row locked for its duration, so concurrent senders in any process
        get distinct slots.
        """
        with self._db.statement() as conn:
            row = conn.execute(
                """
                INSERT INTO send_rate_slots AS s (provider, next_slot)
                VALUES (%(provider)s, now() + make_interval(secs => %(span)s))
                ON CONFLICT (provider) DO UPDATE
                   SET next_slot = greatest(s.next_slot, now()) + make_interval(secs => %(span)s)
                 WHERE greatest(s.next_slot, now()) + make_interval(secs => %(last)s)
                       <= now() + make_interval(secs => %(max_wait)s)
                RETURNING next_slot - make_interval(secs => %(span)s) AS first, now() AS now
                """,
                {
                    "provider": provider,
                    "span": spacing_seconds * count,
                    "last": spacing_seconds * (count - 1),
                    "max_wait": max_wait_seconds,
                },
            ).fetchone()
        if row is None:
            return []
        step = timedelta(seconds=spacing_seconds)
        return [Slot(at=row["first"] + i * step, now=row["now"]) for i in range(count)]
