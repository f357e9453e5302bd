"""SQL for what a key's policy counts (SPEC 12): recipients per UTC day, requests per client
IP per minute. Each count is one conditional upsert, so concurrent requests on any instance
cannot together pass a limit that each alone fits: the row lock orders them, and a request
that would pass the limit changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from chalicelib.db import Database

_RESERVE_RECIPIENTS = """
INSERT INTO key_daily_usage (api_key_id, day, recipients)
VALUES (%(key)s, (now() AT TIME ZONE 'UTC')::date, %(count)s)
ON CONFLICT (api_key_id, day) DO UPDATE
   SET recipients = key_daily_usage.recipients + excluded.recipients
 WHERE %(quota)s::bigint IS NULL
    OR key_daily_usage.recipients + excluded.recipients <= %(quota)s::bigint
RETURNING recipients
"""


@dataclass(frozen=True)
class IpWindow:
    """The client IP's count in the current minute (None when this request was refused)."""

    hits: int | None
    seconds_left: float


def reserve_recipients(
    conn: psycopg.Connection[Any], key_id: uuid.UUID, count: int, quota: int | None
) -> bool:
    """Count ``count`` more recipients for today on ``conn`` (the caller's transaction, so the
    count commits or rolls back with the rows it counts). False, counting nothing, when that
    would pass ``quota``."""
    if count <= 0:
        return True
    if quota is not None and count > quota:
        return False
    row = conn.execute(_RESERVE_RECIPIENTS, {"key": key_id, "count": count, "quota": quota})
    return row.fetchone() is not None


class KeyLimitRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def reserve_recipients(self, key_id: uuid.UUID, count: int, quota: int | None) -> bool:
        """:func:`reserve_recipients` as a statement of its own."""
        with self._db.statement() as conn:
            return reserve_recipients(conn, key_id, count, quota)

    def release_recipients(self, key_id: uuid.UUID, count: int) -> None:
        """Give back recipients counted for work that did not happen (never below zero)."""
        if count <= 0:
            return
        with self._db.statement() as conn:
            conn.execute(
                "UPDATE key_daily_usage SET recipients = greatest(recipients - %s, 0)"
                " WHERE api_key_id = %s AND day = (now() AT TIME ZONE 'UTC')::date",
                (count, key_id),
            )

    def recipients_today(self, key_id: uuid.UUID) -> int:
        with self._db.statement() as conn:
            row = conn.execute(
                "SELECT recipients FROM key_daily_usage"
                " WHERE api_key_id = %s AND day = (now() AT TIME ZONE 'UTC')::date",
                (key_id,),
            ).fetchone()
        return int(row["recipients"]) if row else 0

    def hit_ip(self, key_id: uuid.UUID, client_ip: str, limit: int) -> IpWindow:
        """Count a request from ``client_ip`` in this minute unless it already made ``limit``."""
        with self._db.statement() as conn:
            row = conn.execute(
                """
                WITH hit AS (
                    INSERT INTO key_ip_windows (api_key_id, client_ip, window_start, hits)
                    VALUES (%(key)s, %(ip)s, date_trunc('minute', now()), 1)
                    ON CONFLICT (api_key_id, client_ip, window_start) DO UPDATE
                       SET hits = key_ip_windows.hits + 1
                     WHERE key_ip_windows.hits < %(limit)s
                    RETURNING hits
                )
                SELECT (SELECT hits FROM hit) AS hits,
                       extract(epoch FROM date_trunc('minute', now()) + interval '1 minute'
                                          - now()) AS seconds_left
                """,
                {"key": key_id, "ip": client_ip, "limit": limit},
            ).fetchone()
        assert row is not None  # noqa: S101 - a SELECT of scalars returns one row
        hits = row["hits"]
        return IpWindow(
            hits=None if hits is None else int(hits), seconds_left=float(row["seconds_left"])
        )

    def prune(self, older_than_minutes: int = 10, older_than_days: int = 35) -> int:
        """Forget per-IP windows and daily counts nobody reads any more."""
        with self._db.statement() as conn:
            windows = conn.execute(
                "DELETE FROM key_ip_windows WHERE window_start < now() - make_interval(mins => %s)",
                (older_than_minutes,),
            ).rowcount
        with self._db.statement() as conn:
            days = conn.execute(
                "DELETE FROM key_daily_usage WHERE day < (now() AT TIME ZONE 'UTC')::date - %s",
                (older_than_days,),
            ).rowcount
        return windows + days
