"""SQL for the suppression list (one per deployment) and for webhook replay protection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.db import Database
from chalicelib.models.lifecycle import SuppressionReason


@dataclass(frozen=True)
class Suppression:
    address: str
    reason: SuppressionReason
    email_id: str | None
    detail: str | None
    created_at: datetime


@dataclass(frozen=True)
class NewSuppression:
    address: str  # lower case
    reason: str
    email_id: str | None = None
    detail: str | None = None


_COLUMNS = "address, reason, email_id, detail, created_at"


class SuppressionRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add_many(self, entries: list[NewSuppression]) -> dict[str, Suppression]:
        """Add the addresses not listed yet (a listed one keeps its first reason); return
        every asked-for address as now listed. One statement; an address another request
        listed while it ran (invisible to its snapshot) is read once more."""
        if not entries:
            return {}
        with self._db.statement() as conn:
            rows = conn.execute(
                f"""
                WITH added AS (
                    INSERT INTO suppressions (address, reason, email_id, detail)
                    SELECT * FROM unnest(%(addresses)s::text[], %(reasons)s::text[],
                                         %(email_ids)s::text[], %(details)s::text[])
                    ON CONFLICT (address) DO NOTHING
                    RETURNING {_COLUMNS}
                )
                SELECT {_COLUMNS} FROM added
                UNION ALL
                SELECT {_COLUMNS} FROM suppressions
                 WHERE address = ANY(%(addresses)s) AND address NOT IN (SELECT address FROM added)
                """,
                {
                    "addresses": [e.address for e in entries],
                    "reasons": [e.reason for e in entries],
                    "email_ids": [e.email_id for e in entries],
                    "details": [e.detail for e in entries],
                },
            ).fetchall()
        listed = {row["address"]: _suppression(row) for row in rows}
        raced = [e.address for e in entries if e.address not in listed]
        return listed | self.find_many(raced) if raced else listed

    def find_many(self, addresses: list[str]) -> dict[str, Suppression]:
        """The listed ones among ``addresses`` (lower case), by address."""
        if not addresses:
            return {}
        with self._db.statement() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM suppressions WHERE address = ANY(%s)", (addresses,)
            ).fetchall()
        return {row["address"]: _suppression(row) for row in rows}

    def page(self, after: str | None, limit: int) -> list[Suppression]:
        """Listed addresses in address order, after ``after`` (keyset paging)."""
        with self._db.statement() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM suppressions"
                " WHERE %(after)s::text IS NULL OR address > %(after)s"
                " ORDER BY address LIMIT %(limit)s",
                {"after": after, "limit": limit},
            ).fetchall()
        return [_suppression(row) for row in rows]

    def delete(self, address: str) -> bool:
        with self._db.statement() as conn:
            deleted = conn.execute("DELETE FROM suppressions WHERE address = %s", (address,))
        return deleted.rowcount == 1


class WebhookTokenRepository:
    """Tokens of signed webhooks already accepted: a replayed request is refused."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def remember(self, provider: str, token: str) -> bool:
        """Record ``token``; False when it was seen before (a replay)."""
        with self._db.statement() as conn:
            row = conn.execute(
                "INSERT INTO webhook_tokens (provider, token) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING RETURNING token",
                (provider, token),
            ).fetchone()
        return row is not None

    def forget(self, provider: str, token: str) -> None:
        """Let a token be used again (its request failed before it changed anything)."""
        with self._db.statement() as conn:
            conn.execute(
                "DELETE FROM webhook_tokens WHERE provider = %s AND token = %s", (provider, token)
            )

    def prune(self, older_than_seconds: float) -> int:
        """Drop tokens old enough that their timestamps are refused as stale anyway."""
        with self._db.statement() as conn:
            return conn.execute(
                "DELETE FROM webhook_tokens WHERE seen_at < now() - make_interval(secs => %s)",
                (older_than_seconds,),
            ).rowcount


def _suppression(row: dict[str, Any]) -> Suppression:
    return Suppression(
        address=row["address"],
        reason=row["reason"],
        email_id=row["email_id"],
        detail=row["detail"],
        created_at=row["created_at"],
    )
