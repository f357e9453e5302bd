"""SQL for send-rate slots: one row per provider, shared by every process (see 0006)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
        """Reserve ``provider``'s next send slot, ``spacing_seconds`` after the previous one.

        One statement, the row locked for its duration, so concurrent senders in any process
        get distinct slots. None (nothing reserved) when the next slot is more than
        ``max_wait_seconds`` away: the budget is full for now.
        """
        with self._db.statement() as conn:
            row = conn.execute(
                """
                INSERT INTO send_rate_slots AS s (provider, next_slot)
                VALUES (%(provider)s, now() + make_interval(secs => %(spacing)s))
                ON CONFLICT (provider) DO UPDATE
                   SET next_slot = greatest(s.next_slot, now())
                                   + make_interval(secs => %(spacing)s)
                 WHERE greatest(s.next_slot, now())
                       <= now() + make_interval(secs => %(max_wait)s)
                RETURNING next_slot - make_interval(secs => %(spacing)s) AS at, now() AS now
                """,
                {"provider": provider, "spacing": spacing_seconds, "max_wait": max_wait_seconds},
            ).fetchone()
        return Slot(at=row["at"], now=row["now"]) if row else None
