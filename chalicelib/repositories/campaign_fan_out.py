"""The fan-out: staged rows recorded as recipient rows (queued, or already final when
suppressed or cancelled) in steps with the checkpoint, the queued checkpoint, and the
consumer's read of a chunk message's recipients.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from chalicelib.repositories.campaign_table import CampaignTable
from chalicelib.repositories.delivery_rows import (
    COLUMNS,
    D_COLUMNS,
    NO_KEY_SQL,
    Delivery,
    delivery_from_row,
)


@dataclass(frozen=True)
class Recorded:
    """One fan-out step: the lines recorded as queued recipients (in order), the rows
    recorded as already final (suppressed, or cancelled), and the new checkpoint."""

    queued_lines: list[int]
    final_rows: list[Delivery]
    through_line: int


@dataclass(frozen=True)
class ChunkRow:
    chunk: int  # the index of its chunk in the request
    campaign_id: str
    delivery: Delivery


class CampaignFanOut(CampaignTable):
    """The fan-out's statements (under the processing lease) and the consumer's chunk read."""

    def record(
        self,
        campaign_id: str,
        token: uuid.UUID,
        *,
        after_line: int,
        limit: int,
        email: dict[str, Any],
        suppressed_detail: str,
    ) -> Recorded:
        """Record the next ``limit`` staged rows as recipients, in one transaction with the
        checkpoint: ``queued`` (dispatched: the caller queues their chunks now, or a resume
        does), ``suppressed`` when listed, ``cancelled`` when the campaign is."""
        with self._db.transaction() as conn:
            self.renew_lease(conn, campaign_id, token)
            rows = conn.execute(
                """
                WITH picked AS (
                    SELECT r.*, s.reason AS listed
                      FROM campaign_rows r
                      LEFT JOIN suppressions s ON s.address = lower(r.recipient)
                     WHERE r.campaign_id = %(id)s AND r.line > %(after)s
                     ORDER BY r.line LIMIT %(limit)s
                ), state AS (
                    SELECT status = 'cancelled' AS cancelled FROM campaigns WHERE id = %(id)s
                ), inserted AS (
                    INSERT INTO deliveries (id, api_key_id, email_id, email_recipient_id,
                                            recipient, recipient_name, recipient_company,
                                            status, status_detail, result_pending,
                                            client_env_id, project_id, closure_id, metadata,
                                            dispatched_at, test_mode, campaign_id,
                                            template_id, template_version, recipient_params)
                    SELECT gen_random_uuid(), %(key)s, %(email_id)s, p.email_recipient_id,
                           p.recipient, p.recipient_name, p.recipient_company,
                           CASE WHEN p.listed IS NOT NULL THEN 'suppressed'
                                WHEN state.cancelled THEN 'cancelled' ELSE 'queued' END,
                           CASE WHEN p.listed IS NOT NULL
                                THEN replace(%(suppressed)s, '{reason}', p.listed)
                                WHEN state.cancelled THEN 'campaign_cancelled' END,
                           p.listed IS NOT NULL OR state.cancelled,
                           %(client_env_id)s, %(project_id)s, %(closure_id)s,
                           %(metadata)s::jsonb,
                           CASE WHEN p.listed IS NULL AND NOT state.cancelled THEN now() END,
                           %(test_mode)s, %(id)s, %(template_id)s, %(template_version)s,
                           p.params
                      FROM picked p, state ORDER BY p.line
                    ON CONFLICT DO NOTHING
                    RETURNING id, email_recipient_id, status
                )
                SELECT p.line, i.id, i.status
                  FROM picked p LEFT JOIN inserted i
                    ON i.email_recipient_id = p.email_recipient_id
                 ORDER BY p.line
                """,
                {
                    "id": campaign_id,
                    "after": after_line,
                    "limit": limit,
                    "key": email["api_key_id"],
                    "email_id": email["email_id"],
                    "suppressed": suppressed_detail,
                    "client_env_id": email.get("client_env_id"),
                    "project_id": email.get("projectId"),
                    "closure_id": email.get("closureId"),
                    "metadata": json.dumps(email.get("metadata") or {}),
                    "test_mode": email["test_mode"],
                    "template_id": email.get("template_id"),
                    "template_version": email.get("template_version"),
                },
            ).fetchall()
            through = rows[-1]["line"] if rows else after_line
            conn.execute(
                "UPDATE campaigns SET recorded_through = %s, fanned_out = %s,"
                " updated_at = now() WHERE id = %s",
                (through, not rows, campaign_id),
            )
            # Only the few rows already final (to report) are read back whole.
            final_ids = [row["id"] for row in rows if row["id"] and row["status"] != "queued"]
            final = (
                conn.execute(
                    f"SELECT {COLUMNS} FROM deliveries WHERE id = ANY(%s)", (final_ids,)
                ).fetchall()
                if final_ids
                else []
            )
        queued = [row["line"] for row in rows if row["id"] and row["status"] == "queued"]
        return Recorded(queued, [delivery_from_row(row) for row in final], through)

    def recorded_lines(self, campaign_id: str, after_line: int, through_line: int) -> list[int]:
        """Lines recorded as queued recipients in (after, through]: a resume queues them."""
        with self._db.statement() as conn:
            rows = conn.execute(
                "SELECT line FROM campaign_rows WHERE campaign_id = %s"
                " AND line > %s AND line <= %s ORDER BY line",
                (campaign_id, after_line, through_line),
            ).fetchall()
        return [row["line"] for row in rows]

    def queued(self, campaign_id: str, token: uuid.UUID, through_line: int) -> None:
        """The chunks up to ``through_line`` are on the processing queue."""
        with self._db.transaction() as conn:
            self.renew_lease(conn, campaign_id, token)
            conn.execute(
                "UPDATE campaigns SET queued_through = %s, updated_at = now() WHERE id = %s",
                (through_line, campaign_id),
            )

    # --- the consumer's side -------------------------------------------------------------

    def chunk_rows(self, chunks: list[tuple[str, int, int]]) -> list[ChunkRow]:
        """The queued recipients of campaign chunks (campaign, first line, last line), with
        each row's params, in chunk and line order."""
        if not chunks:
            return []
        with self._db.statement() as conn:
            rows = conn.execute(
                f"""
                SELECT t.n - 1 AS chunk, r.campaign_id AS chunk_campaign,
                       {D_COLUMNS}
                  FROM unnest(%s::text[], %s::int[], %s::int[]) WITH ORDINALITY
                       AS t(campaign_id, first_line, last_line, n)
                  JOIN campaigns c ON c.id = t.campaign_id
                  JOIN campaign_rows r ON r.campaign_id = t.campaign_id
                   AND r.line BETWEEN t.first_line AND t.last_line
                  JOIN deliveries d
                    ON coalesce(d.api_key_id, {NO_KEY_SQL}) = coalesce(c.api_key_id, {NO_KEY_SQL})
                   AND d.email_id = c.email_id AND d.email_recipient_id = r.email_recipient_id
                 WHERE d.status = 'queued'
                 ORDER BY t.n, r.line
                """,
                (
                    [c[0] for c in chunks],
                    [c[1] for c in chunks],
                    [c[2] for c in chunks],
                ),
            ).fetchall()
        return [
            ChunkRow(int(row["chunk"]), row["chunk_campaign"], delivery_from_row(row))
            for row in rows
        ]
