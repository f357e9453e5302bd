"""Validation's writes: valid rows staged with ``COPY`` together with the checkpoint, the
duplicate recipient ids found among them, and the verdict (the counts, the errors, the rows
dropped and the key's day counted, the next status) in one transaction.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from chalicelib.models.campaigns import MAX_LISTED_ERRORS, CampaignStatus
from chalicelib.repositories.campaign_table import CampaignTable
from chalicelib.repositories.key_limits import reserve_recipients

StagedRow = tuple[int, str, str, str | None, str | None, str]
"""A valid row to stage: line, recipient id, address, name, company, params (JSON)."""


@dataclass(frozen=True)
class Progress:
    """Validation's counters at a checkpoint."""

    through_line: int
    rows_total: int
    rows_invalid: int
    error_count: int
    errors: list[dict[str, Any]]


class CampaignStaging(CampaignTable):
    """Validation's statements, each under the processing lease."""

    def stage(
        self, campaign_id: str, token: uuid.UUID, rows: list[StagedRow], progress: Progress
    ) -> None:
        """Stage valid rows (COPY) and move the validation checkpoint, in one transaction."""
        with self._db.transaction() as conn:
            self.renew_lease(conn, campaign_id, token)
            if rows:
                with conn.cursor().copy(
                    "COPY campaign_rows (campaign_id, line, email_recipient_id, recipient,"
                    " recipient_name, recipient_company, params) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row((campaign_id, *row))
            conn.execute(
                "UPDATE campaigns SET validated_through = %s, rows_total = %s, rows_invalid = %s,"
                " error_count = %s, errors = %s::jsonb, updated_at = now() WHERE id = %s",
                (
                    progress.through_line,
                    progress.rows_total,
                    progress.rows_invalid,
                    progress.error_count,
                    json.dumps(progress.errors),
                    campaign_id,
                ),
            )

    def duplicates(self, campaign_id: str, limit: int) -> tuple[int, list[tuple[int, str]]]:
        """Staged rows whose recipient id an earlier line has: how many, and the first
        ``limit`` (line, recipient id) in line order."""
        with self._db.statement() as conn:
            rows = conn.execute(
                """
                WITH later AS (
                    SELECT line, email_recipient_id, row_number() OVER (
                               PARTITION BY email_recipient_id ORDER BY line) AS nth
                      FROM campaign_rows WHERE campaign_id = %s)
                SELECT line, email_recipient_id, count(*) OVER () AS total
                  FROM later WHERE nth > 1 ORDER BY line LIMIT %s
                """,
                (campaign_id, limit),
            ).fetchall()
        total = int(rows[0]["total"]) if rows else 0
        return total, [(row["line"], row["email_recipient_id"]) for row in rows]

    def finish_validation(
        self,
        campaign_id: str,
        token: uuid.UUID,
        *,
        status: CampaignStatus,
        progress: Progress,
        drop_duplicates: bool,
        quota: tuple[uuid.UUID, int, int | None] | None,
    ) -> CampaignStatus:
        """Validation's verdict: the counts, the errors and the next status, in one
        transaction with dropping the rows that will not be sent and counting those that
        will against the key's day (``quota``: key, rows, daily quota). The status set: a
        file whose rows do not fit the quota fails."""
        with self._db.transaction() as conn:
            self.renew_lease(conn, campaign_id, token)
            if quota is not None and status is not CampaignStatus.FAILED:
                key_id, count, limit = quota
                if not reserve_recipients(conn, key_id, count, limit):
                    status = CampaignStatus.FAILED
                    message = (
                        f"{count} recipients would pass this key's daily recipient quota"
                        f" ({limit}); nothing was sent"
                    )
                    progress = Progress(
                        progress.through_line,
                        progress.rows_total,
                        progress.rows_invalid,
                        progress.error_count + 1,
                        [quota_error(message), *progress.errors][:MAX_LISTED_ERRORS],
                    )
            if status is CampaignStatus.FAILED:
                conn.execute("DELETE FROM campaign_rows WHERE campaign_id = %s", (campaign_id,))
            elif drop_duplicates:
                conn.execute(
                    "DELETE FROM campaign_rows r USING campaign_rows e"
                    " WHERE r.campaign_id = %(id)s AND e.campaign_id = %(id)s"
                    " AND e.email_recipient_id = r.email_recipient_id AND e.line < r.line",
                    {"id": campaign_id},
                )
            conn.execute(
                "UPDATE campaigns SET status = CASE WHEN status = 'cancelled' THEN status"
                " ELSE %s END, validated = true, validated_through = %s, rows_total = %s,"
                " rows_invalid = %s, error_count = %s, errors = %s::jsonb, updated_at = now()"
                " WHERE id = %s",
                (
                    status.value,
                    progress.through_line,
                    progress.rows_total,
                    progress.rows_invalid,
                    progress.error_count,
                    json.dumps(progress.errors),
                    campaign_id,
                ),
            )
        return status

    def fail(self, campaign_id: str, token: uuid.UUID, error: dict[str, Any]) -> None:
        """The file cannot be read at all: failed, with ``error`` its one error."""
        with self._db.transaction() as conn:
            self.renew_lease(conn, campaign_id, token)
            conn.execute("DELETE FROM campaign_rows WHERE campaign_id = %s", (campaign_id,))
            conn.execute(
                "UPDATE campaigns SET status = CASE WHEN status = 'cancelled' THEN status"
                " ELSE 'failed' END, validated = true, fanned_out = true, error_count = 1,"
                " errors = %s::jsonb, updated_at = now() WHERE id = %s",
                (json.dumps([error]), campaign_id),
            )


def quota_error(message: str) -> dict[str, Any]:
    """The error of a file whose rows do not fit the key's daily quota."""
    return {
        "line": 0,
        "email_recipient_id": None,
        "field": "daily_recipient_quota",
        "message": message,
    }
