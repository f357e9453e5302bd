"""The tables the ``mmms`` command prints (rich), one per kind of answer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table

STATUS_STYLES = {
    "queued": "yellow",
    "sent": "cyan",
    "delivered": "green",
    "bounced": "red",
    "complained": "red",
    "failed": "red",
    "suppressed": "magenta",
    "cancelled": "dim",
}


def recipients_table(recipients: Iterable[Mapping[str, Any]]) -> Table:
    table = Table("recipient id", "address", "status", "provider", "detail")
    for row in recipients:
        state = str(row.get("status"))
        table.add_row(
            str(row.get("email_recipient_id")),
            str(row.get("recipient")),
            f"[{STATUS_STYLES.get(state, 'white')}]{state}[/]",
            str(row.get("provider") or ""),
            str(row.get("last_error") or row.get("status_detail") or ""),
        )
    return table


def suppressions_table(entries: Iterable[Mapping[str, Any]]) -> Table:
    table = Table("address", "reason", "email id", "since")
    for entry in entries:
        table.add_row(
            str(entry["address"]),
            str(entry["reason"]),
            str(entry.get("email_id") or ""),
            str(entry["created_at"]),
        )
    return table
