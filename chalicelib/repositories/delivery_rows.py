"""A recipient row (table ``deliveries``): its types, its columns, and the SQL pieces every
statement about it shares. The statements themselves live by purpose:

- ``deliveries``: recording rows and emails, dispatch, reporting and recovery;
- ``send_leases``: the send lease (take it, settle it, fail a row nobody holds);
- ``delivery_status``: the status lookup's reads (pages, counts, stored events);
- ``delivery_events``: applying a provider event to the rows it concerns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.db import Database
from chalicelib.models.mail import DeliveryState


@dataclass(frozen=True)
class NewDelivery:
    email_id: str
    email_recipient_id: str
    recipient: str
    client_env_id: str | None = None
    project_id: str | None = None
    closure_id: str | None = None
    metadata: dict[str, str] | None = None
    recipient_name: str | None = None
    recipient_company: str | None = None
    queued_at: datetime | None = None
    dispatched: bool = False
    test_mode: bool = False
    # Recorded as ``suppressed`` (this detail says why) instead of ``queued``: never sent.
    suppressed: str | None = None
    # The stored template the email renders (per email), and this recipient's params.
    template_id: str | None = None
    template_version: int | None = None
    recipient_params: dict[str, str] | None = None


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    api_key_id: uuid.UUID | None
    email_id: str
    email_recipient_id: str
    recipient: str
    recipient_name: str | None
    recipient_company: str | None
    status: DeliveryState
    provider: str | None
    message_id: str | None
    attempts: int
    last_error: str | None
    status_detail: str | None
    client_env_id: str | None
    project_id: str | None
    closure_id: str | None
    metadata: dict[str, str]
    result_pending: bool
    queued_at: datetime
    sent_at: datetime | None
    dispatched_at: datetime | None
    lease_token: uuid.UUID | None
    test_mode: bool = False
    updated_at: datetime | None = None
    template_id: str | None = None
    template_version: int | None = None
    recipient_params: dict[str, str] | None = None


JobKey = tuple[uuid.UUID | None, str, str]
"""A recipient row's identity: (api_key_id, email_id, email_recipient_id)."""


COLUMN_NAMES = (
    "id",
    "api_key_id",
    "email_id",
    "email_recipient_id",
    "recipient",
    "recipient_name",
    "recipient_company",
    "status",
    "provider",
    "message_id",
    "attempts",
    "last_error",
    "status_detail",
    "client_env_id",
    "project_id",
    "closure_id",
    "metadata",
    "result_pending",
    "queued_at",
    "sent_at",
    "dispatched_at",
    "lease_token",
    "test_mode",
    "updated_at",
    "template_id",
    "template_version",
    "recipient_params",
)
COLUMNS = ", ".join(COLUMN_NAMES)
D_COLUMNS = ", ".join(f"d.{name}" for name in COLUMN_NAMES)
# Written exactly like the unique indexes' expression, so lookups use those indexes.
NO_KEY_SQL = "'00000000-0000-0000-0000-000000000000'::uuid"
KEY_MATCH = f"coalesce(api_key_id, {NO_KEY_SQL}) = coalesce(%(api_key_id)s::uuid, {NO_KEY_SQL})"
LEASE_FREE = "(lease_until IS NULL OR lease_until < now())"


def select_deliveries(database: Database, where: str, **params: Any) -> list[Delivery]:
    """The rows ``where`` selects (named parameters)."""
    with database.statement() as conn:
        rows = conn.execute(f"SELECT {COLUMNS} FROM deliveries WHERE {where}", params).fetchall()
    return [delivery_from_row(row) for row in rows]


def update_one(
    database: Database, assignments: str, condition: str, delivery_id: uuid.UUID, **params: Any
) -> Delivery | None:
    """Change one row if ``condition`` holds; the row after, or None."""
    with database.statement() as conn:
        row = conn.execute(
            f"UPDATE deliveries SET {assignments}, updated_at = now()"
            f" WHERE id = %(id)s AND {condition} RETURNING {COLUMNS}",
            {**params, "id": delivery_id},
        ).fetchone()
    return delivery_from_row(row) if row else None


def key_of(delivery: Delivery) -> JobKey:
    return (delivery.api_key_id, delivery.email_id, delivery.email_recipient_id)


def delivery_from_row(row: dict[str, Any]) -> Delivery:
    return Delivery(
        id=row["id"],
        api_key_id=row["api_key_id"],
        email_id=row["email_id"],
        email_recipient_id=row["email_recipient_id"],
        recipient=row["recipient"],
        recipient_name=row["recipient_name"],
        recipient_company=row["recipient_company"],
        status=DeliveryState(row["status"]),
        provider=row["provider"],
        message_id=row["message_id"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        status_detail=row["status_detail"],
        client_env_id=row["client_env_id"],
        project_id=row["project_id"],
        closure_id=row["closure_id"],
        metadata=dict(row["metadata"] or {}),
        result_pending=row["result_pending"],
        queued_at=row["queued_at"],
        sent_at=row["sent_at"],
        dispatched_at=row["dispatched_at"],
        lease_token=row["lease_token"],
        test_mode=row["test_mode"],
        updated_at=row["updated_at"],
        template_id=row["template_id"],
        template_version=row["template_version"],
        recipient_params=dict(row["recipient_params"] or {}),
    )
