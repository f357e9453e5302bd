"""The campaign row's shape, and the processing lease every processing step renews.

Processing is resumable: each step writes its rows and its checkpoint in one transaction,
and only while the processor's lease (``worker_token``) is still its own, so two
processors (a redelivered upload event, the tick resuming a stalled campaign) never both
stage or record the same rows (:meth:`CampaignTable.renew_lease`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.db import Connection, Database
from chalicelib.models.campaigns import CampaignStatus

CAMPAIGN_COLUMNS = (
    "id, api_key_id, email_id, format, skip_invalid, send_at, test_mode, recipient_domains,"
    " daily_quota, status, upload_key,"
    " rows_total, rows_invalid, error_count, errors, validated_through, validated,"
    " recorded_through, queued_through, fanned_out, seq, created_at, updated_at"
)
UNFINISHED = "status NOT IN ('completed', 'cancelled', 'failed')"


@dataclass(frozen=True)
class RowPolicy:
    """What the key's policy asks of each row: allowed recipient domains (None: any), and
    the daily recipient quota the file's rows count against (None: none)."""

    recipient_domains: tuple[str, ...] | None = None
    daily_quota: int | None = None


class LeaseLostError(Exception):
    """Another processor holds the campaign now (this one's lease ran out): stop."""


@dataclass(frozen=True)
class Campaign:
    id: str
    api_key_id: uuid.UUID
    email_id: str
    format: str
    skip_invalid: bool
    send_at: datetime | None
    test_mode: bool
    policy: RowPolicy
    status: CampaignStatus
    upload_key: str
    rows_total: int
    rows_invalid: int
    error_count: int
    errors: list[dict[str, Any]]
    validated_through: int
    validated: bool
    recorded_through: int
    queued_through: int
    fanned_out: bool
    seq: int
    created_at: datetime
    updated_at: datetime
    counts: dict[str, int] = field(default_factory=dict)


class CampaignTable:
    """The database and the processing lease's length, shared by the campaign statements."""

    def __init__(self, database: Database, lease_seconds: float = 120.0) -> None:
        self._db = database
        self._lease = lease_seconds

    # --- processing: one processor at a time -------------------------------------------

    def take(self, campaign_id: str) -> tuple[Campaign, uuid.UUID] | None:
        """The campaign and a processing lease on it, if nobody else holds one."""
        token = uuid.uuid4()
        with self._db.statement() as conn:
            row = conn.execute(
                f"UPDATE campaigns SET worker_token = %(token)s,"
                f" worker_until = now() + make_interval(secs => %(lease)s)"
                f" WHERE id = %(id)s AND (worker_until IS NULL OR worker_until < now())"
                f" RETURNING {CAMPAIGN_COLUMNS}, '{{}}'::jsonb AS counts",
                {"token": token, "lease": self._lease, "id": campaign_id},
            ).fetchone()
        return (campaign_from_row(row), token) if row else None

    def release(self, campaign_id: str, token: uuid.UUID) -> None:
        with self._db.statement() as conn:
            conn.execute(
                "UPDATE campaigns SET worker_token = NULL, worker_until = NULL"
                " WHERE id = %s AND worker_token = %s",
                (campaign_id, token),
            )

    def renew_lease(self, conn: Connection, campaign_id: str, token: uuid.UUID) -> None:
        """Renew the lease (row locked till commit), or LeaseLostError."""
        row = conn.execute(
            "UPDATE campaigns SET worker_until = now() + make_interval(secs => %s)"
            " WHERE id = %s AND worker_token = %s RETURNING id",
            (self._lease, campaign_id, token),
        ).fetchone()
        if row is None:
            raise LeaseLostError(campaign_id)


def campaign_from_row(row: dict[str, Any]) -> Campaign:
    return Campaign(
        id=row["id"],
        api_key_id=row["api_key_id"],
        email_id=row["email_id"],
        format=row["format"],
        skip_invalid=row["skip_invalid"],
        send_at=row["send_at"],
        test_mode=row["test_mode"],
        policy=RowPolicy(
            tuple(row["recipient_domains"]) if row["recipient_domains"] is not None else None,
            row["daily_quota"],
        ),
        status=CampaignStatus(row["status"]),
        upload_key=row["upload_key"],
        rows_total=row["rows_total"],
        rows_invalid=row["rows_invalid"],
        error_count=row["error_count"],
        errors=list(row["errors"] or []),
        validated_through=row["validated_through"],
        validated=row["validated"],
        recorded_through=row["recorded_through"],
        queued_through=row["queued_through"],
        fanned_out=row["fanned_out"],
        seq=row["seq"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        counts={k: int(v) for k, v in (row.get("counts") or {}).items()},
    )
