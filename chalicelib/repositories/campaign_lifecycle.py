"""The campaign row through its life: created, read with its counts, paged, moved from
status to status, found due by the tick, cancelled (with its rows not yet held).

A status read is one statement: the campaign row with its per-status counts
(``campaign_counts``, kept by triggers on ``deliveries``), never a scan of its rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from chalicelib.models.campaigns import CampaignStatus
from chalicelib.repositories.campaign_table import (
    CAMPAIGN_COLUMNS,
    UNFINISHED,
    Campaign,
    CampaignTable,
    RowPolicy,
    campaign_from_row,
)
from chalicelib.repositories.delivery_rows import COLUMNS, LEASE_FREE, Delivery, delivery_from_row

WITH_COUNTS = (
    f"{CAMPAIGN_COLUMNS}, (SELECT coalesce(jsonb_object_agg(k.status, k.n), '{{}}'::jsonb)"
    " FROM campaign_counts k WHERE k.campaign_id = campaigns.id) AS counts"
)


class CampaignLifecycle(CampaignTable):
    """The campaign row's statements outside processing."""

    def create(
        self,
        *,
        api_key_id: uuid.UUID,
        email_id: str,
        fmt: str,
        skip_invalid: bool,
        send_at: datetime | None,
        test_mode: bool,
        policy: RowPolicy,
    ) -> Campaign | None:
        """A new campaign awaiting its file; None when the key has one for ``email_id``."""
        campaign_id = f"cmp_{uuid.uuid4().hex}"
        with self._db.statement() as conn:
            row = conn.execute(
                f"INSERT INTO campaigns (id, api_key_id, email_id, format, skip_invalid, send_at,"
                f" test_mode, recipient_domains, daily_quota, status, upload_key)"
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'awaiting_upload', %s)"
                f" ON CONFLICT (api_key_id, email_id) DO NOTHING"
                f" RETURNING {CAMPAIGN_COLUMNS}, '{{}}'::jsonb AS counts",
                (
                    campaign_id,
                    api_key_id,
                    email_id,
                    fmt,
                    skip_invalid,
                    send_at,
                    test_mode,
                    list(policy.recipient_domains)
                    if policy.recipient_domains is not None
                    else None,
                    policy.daily_quota,
                    f"uploads/{campaign_id}.{fmt}",
                ),
            ).fetchone()
        return campaign_from_row(row) if row else None

    def get(self, campaign_id: str, api_key_id: uuid.UUID | None = None) -> Campaign | None:
        """The campaign with its counts (one statement); a key sees only its own."""
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT {WITH_COUNTS} FROM campaigns WHERE id = %(id)s"
                " AND (%(key)s::uuid IS NULL OR api_key_id = %(key)s)",
                {"id": campaign_id, "key": api_key_id},
            ).fetchone()
        return campaign_from_row(row) if row else None

    def by_email(self, api_key_id: uuid.UUID, email_id: str) -> Campaign | None:
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT {WITH_COUNTS} FROM campaigns WHERE api_key_id = %s AND email_id = %s",
                (api_key_id, email_id),
            ).fetchone()
        return campaign_from_row(row) if row else None

    def by_upload_key(self, upload_key: str) -> Campaign | None:
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT {WITH_COUNTS} FROM campaigns WHERE upload_key = %s", (upload_key,)
            ).fetchone()
        return campaign_from_row(row) if row else None

    def page(self, api_key_id: uuid.UUID, before_seq: int | None, limit: int) -> list[Campaign]:
        """The key's campaigns, newest first (keyset: ``before_seq``)."""
        with self._db.statement() as conn:
            rows = conn.execute(
                f"SELECT {WITH_COUNTS} FROM campaigns WHERE api_key_id = %(key)s"
                " AND (%(before)s::bigint IS NULL OR seq < %(before)s)"
                " ORDER BY seq DESC LIMIT %(limit)s",
                {"key": api_key_id, "before": before_seq, "limit": limit},
            ).fetchall()
        return [campaign_from_row(row) for row in rows]

    def move(
        self, campaign_id: str, to: CampaignStatus, *, only_from: list[CampaignStatus]
    ) -> bool:
        """Change the status if it is one of ``only_from``; whether it changed."""
        with self._db.statement() as conn:
            row = conn.execute(
                "UPDATE campaigns SET status = %s, updated_at = now()"
                " WHERE id = %s AND status = ANY(%s) RETURNING id",
                (to.value, campaign_id, [s.value for s in only_from]),
            ).fetchone()
        return row is not None

    def due(self, limit: int) -> list[str]:
        """Campaigns with work for a processor whose lease is free: validating or sending
        (stalled or not started, or fanned out: to complete once no row is left queued),
        scheduled and due, cancelled with rows left to settle."""
        with self._db.statement() as conn:
            rows = conn.execute(
                "SELECT id FROM campaigns"
                " WHERE (worker_until IS NULL OR worker_until < now()) AND ("
                "   status = 'validating'"
                "   OR (status = 'scheduled' AND send_at <= now())"
                "   OR status = 'sending'"
                "   OR (status = 'cancelled' AND validated AND NOT fanned_out))"
                " ORDER BY updated_at LIMIT %s",
                (limit,),
            ).fetchall()
            rows += conn.execute(
                "SELECT DISTINCT d.campaign_id AS id FROM deliveries d"
                " JOIN campaigns c ON c.id = d.campaign_id AND c.status = 'cancelled'"
                f" WHERE d.campaign_id IS NOT NULL AND d.status = 'queued' AND {LEASE_FREE}"
                " LIMIT %s",
                (limit,),
            ).fetchall()
        return list(dict.fromkeys(row["id"] for row in rows))

    def complete_if_done(self, campaign_id: str) -> bool:
        """``sending`` → ``completed`` once every row is recorded and none is left queued."""
        with self._db.statement() as conn:
            row = conn.execute(
                "UPDATE campaigns SET status = 'completed', updated_at = now()"
                " WHERE id = %(id)s AND status = 'sending' AND fanned_out AND NOT EXISTS ("
                "   SELECT 1 FROM deliveries d WHERE d.campaign_id = %(id)s"
                "   AND d.status = 'queued') RETURNING id",
                {"id": campaign_id},
            ).fetchone()
        return row is not None

    def cancel(self, campaign_id: str, api_key_id: uuid.UUID) -> bool:
        """Mark an unfinished campaign cancelled (its rows follow); False if it had finished.

        From the commit on, no row of it is leased for sending (``claim_keys`` cancels them
        instead), so nothing is sent after the answer but what a sender already held.
        """
        with self._db.statement() as conn:
            row = conn.execute(
                "UPDATE campaigns SET status = 'cancelled', updated_at = now()"
                f" WHERE id = %s AND api_key_id = %s AND {UNFINISHED} RETURNING id",
                (campaign_id, api_key_id),
            ).fetchone()
        return row is not None

    def held(self, campaign_id: str) -> int:
        """Rows of the campaign a sender holds now (leased, not yet settled)."""
        with self._db.statement() as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM deliveries WHERE campaign_id = %s"
                " AND status = 'queued' AND lease_until >= now()",
                (campaign_id,),
            ).fetchone()
        return int(row["n"]) if row else 0

    def cancel_queued(self, campaign_id: str, limit: int) -> list[Delivery]:
        """Up to ``limit`` queued rows of a cancelled campaign that nobody holds → ``cancelled``
        (report pending); the rows changed."""
        with self._db.statement() as conn:
            rows = conn.execute(
                f"""
                UPDATE deliveries
                   SET status = 'cancelled', status_detail = 'campaign_cancelled',
                       result_pending = true, updated_at = now()
                 WHERE id IN (
                        SELECT id FROM deliveries
                         WHERE campaign_id = %(id)s AND status = 'queued' AND {LEASE_FREE}
                         LIMIT %(limit)s)
                   AND status = 'queued' AND {LEASE_FREE}
                   AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = %(id)s
                               AND c.status = 'cancelled')
                RETURNING {COLUMNS}
                """,
                {"id": campaign_id, "limit": limit},
            ).fetchall()
        return [delivery_from_row(row) for row in rows]
