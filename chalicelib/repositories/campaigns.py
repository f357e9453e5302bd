"""SQL for campaigns (SPEC 13): the campaign row, its staged rows, the fan-out into recipient
rows, cancellation and the status read.

Processing is resumable: each step writes its rows and its checkpoint in one transaction,
and only while the processor's lease (``worker_token``) is still its own, so two
processors (a redelivered upload event, the tick resuming a stalled campaign) never both
stage or record the same rows. A status read is one statement: the campaign row with its
per-status counts (``campaign_counts``, kept by triggers on ``deliveries``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.db import Connection, Database
from chalicelib.models.campaigns import MAX_LISTED_ERRORS, CampaignStatus
from chalicelib.repositories.delivery_rows import (
    COLUMNS,
    D_COLUMNS,
    LEASE_FREE,
    NO_KEY_SQL,
    Delivery,
    delivery_from_row,
)
from chalicelib.repositories.key_limits import reserve_recipients

_CAMPAIGN_COLUMNS = (
    "id, api_key_id, email_id, format, skip_invalid, send_at, test_mode, recipient_domains,"
    " daily_quota, status, upload_key,"
    " rows_total, rows_invalid, error_count, errors, validated_through, validated,"
    " recorded_through, queued_through, fanned_out, seq, created_at, updated_at"
)
_WITH_COUNTS = (
    f"{_CAMPAIGN_COLUMNS}, (SELECT coalesce(jsonb_object_agg(k.status, k.n), '{{}}'::jsonb)"
    " FROM campaign_counts k WHERE k.campaign_id = campaigns.id) AS counts"
)
_UNFINISHED = "status NOT IN ('completed', 'cancelled', 'failed')"


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


class CampaignRepository:
    def __init__(self, database: Database, lease_seconds: float = 120.0) -> None:
        self._db = database
        self._lease = lease_seconds

    # --- the campaign row ------------------------------------------------------------

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
                f" RETURNING {_CAMPAIGN_COLUMNS}, '{{}}'::jsonb AS counts",
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
        return _campaign(row) if row else None

    def get(self, campaign_id: str, api_key_id: uuid.UUID | None = None) -> Campaign | None:
        """The campaign with its counts (one statement); a key sees only its own."""
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT {_WITH_COUNTS} FROM campaigns WHERE id = %(id)s"
                " AND (%(key)s::uuid IS NULL OR api_key_id = %(key)s)",
                {"id": campaign_id, "key": api_key_id},
            ).fetchone()
        return _campaign(row) if row else None

    def by_email(self, api_key_id: uuid.UUID, email_id: str) -> Campaign | None:
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT {_WITH_COUNTS} FROM campaigns WHERE api_key_id = %s AND email_id = %s",
                (api_key_id, email_id),
            ).fetchone()
        return _campaign(row) if row else None

    def by_upload_key(self, upload_key: str) -> Campaign | None:
        with self._db.statement() as conn:
            row = conn.execute(
                f"SELECT {_WITH_COUNTS} FROM campaigns WHERE upload_key = %s", (upload_key,)
            ).fetchone()
        return _campaign(row) if row else None

    def page(self, api_key_id: uuid.UUID, before_seq: int | None, limit: int) -> list[Campaign]:
        """The key's campaigns, newest first (keyset: ``before_seq``)."""
        with self._db.statement() as conn:
            rows = conn.execute(
                f"SELECT {_WITH_COUNTS} FROM campaigns WHERE api_key_id = %(key)s"
                " AND (%(before)s::bigint IS NULL OR seq < %(before)s)"
                " ORDER BY seq DESC LIMIT %(limit)s",
                {"key": api_key_id, "before": before_seq, "limit": limit},
            ).fetchall()
        return [_campaign(row) for row in rows]

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
                f" WHERE id = %s AND api_key_id = %s AND {_UNFINISHED} RETURNING id",
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

    # --- processing: one processor at a time -------------------------------------------

    def take(self, campaign_id: str) -> tuple[Campaign, uuid.UUID] | None:
        """The campaign and a processing lease on it, if nobody else holds one."""
        token = uuid.uuid4()
        with self._db.statement() as conn:
            row = conn.execute(
                f"UPDATE campaigns SET worker_token = %(token)s,"
                f" worker_until = now() + make_interval(secs => %(lease)s)"
                f" WHERE id = %(id)s AND (worker_until IS NULL OR worker_until < now())"
                f" RETURNING {_CAMPAIGN_COLUMNS}, '{{}}'::jsonb AS counts",
                {"token": token, "lease": self._lease, "id": campaign_id},
            ).fetchone()
        return (_campaign(row), token) if row else None

    def release(self, campaign_id: str, token: uuid.UUID) -> None:
        with self._db.statement() as conn:
            conn.execute(
                "UPDATE campaigns SET worker_token = NULL, worker_until = NULL"
                " WHERE id = %s AND worker_token = %s",
                (campaign_id, token),
            )

    def stage(
        self, campaign_id: str, token: uuid.UUID, rows: list[StagedRow], progress: Progress
    ) -> None:
        """Stage valid rows (COPY) and move the validation checkpoint, in one transaction."""
        with self._db.transaction() as conn:
            self._renew(conn, campaign_id, token)
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
            self._renew(conn, campaign_id, token)
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
            self._renew(conn, campaign_id, token)
            conn.execute("DELETE FROM campaign_rows WHERE campaign_id = %s", (campaign_id,))
            conn.execute(
                "UPDATE campaigns SET status = CASE WHEN status = 'cancelled' THEN status"
                " ELSE 'failed' END, validated = true, fanned_out = true, error_count = 1,"
                " errors = %s::jsonb, updated_at = now() WHERE id = %s",
                (json.dumps([error]), campaign_id),
            )

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
            self._renew(conn, campaign_id, token)
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
            self._renew(conn, campaign_id, token)
            conn.execute(
                "UPDATE campaigns SET queued_through = %s, updated_at = now() WHERE id = %s",
                (through_line, campaign_id),
            )

    def _renew(self, conn: Connection, campaign_id: str, token: uuid.UUID) -> None:
        """Renew the lease (row locked till commit), or LeaseLostError."""
        row = conn.execute(
            "UPDATE campaigns SET worker_until = now() + make_interval(secs => %s)"
            " WHERE id = %s AND worker_token = %s RETURNING id",
            (self._lease, campaign_id, token),
        ).fetchone()
        if row is None:
            raise LeaseLostError(campaign_id)

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


def _campaign(row: dict[str, Any]) -> Campaign:
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


def quota_error(message: str) -> dict[str, Any]:
    """The error of a file whose rows do not fit the key's daily quota."""
    return {
        "line": 0,
        "email_recipient_id": None,
        "field": "daily_recipient_quota",
        "message": message,
    }
