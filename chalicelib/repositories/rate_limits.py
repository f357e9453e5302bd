"""SQL for per-key request counting in fixed one-minute windows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from chalicelib.db import Database


@dataclass(frozen=True)
class WindowCount:
    hits: int
    seconds_left: float


class RateLimitRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def hit(self, api_key_id: uuid.UUID, at: datetime | None = None) -> WindowCount:
        """Count one request in the key's window of ``at`` (default: the database's now);
        the count so far and the seconds left in that window."""
        with self._db.statement() as conn:
            row = conn.execute(
                """
                INSERT INTO rate_limit_windows (api_key_id, window_start, hits)
                VALUES (%(key)s, date_trunc('minute', coalesce(%(at)s::timestamptz, now())), 1)
                ON CONFLICT (api_key_id, window_start)
                DO UPDATE SET hits = rate_limit_windows.hits + 1
                RETURNING hits,
                          extract(epoch FROM window_start + interval '1 minute'
                                             - coalesce(%(at)s::timestamptz, now()))
                              AS seconds_left
                """,
                {"key": api_key_id, "at": at},
            ).fetchone()
        assert row is not None  # noqa: S101 - an upsert always returns its row
        return WindowCount(hits=int(row["hits"]), seconds_left=float(row["seconds_left"]))

    def prune(self, older_than_minutes: int = 10) -> int:
        """Delete the windows that started more than ``older_than_minutes`` ago."""
        with self._db.statement() as conn:
            cur = conn.execute(
                "DELETE FROM rate_limit_windows"
                " WHERE window_start < now() - make_interval(mins => %s)",
                (older_than_minutes,),
            )
            return cur.rowcount
