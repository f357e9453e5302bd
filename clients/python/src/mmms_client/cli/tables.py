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


def templates_table(templates: Iterable[Mapping[str, Any]]) -> Table:
    pushed = any("action" in t for t in templates)
    table = Table("template id", "name", "version", "params", "created at")
    if pushed:
        table.add_column("pushed")
    for template in templates:
        row = [
            str(template["template_id"]),
            str(template["name"]),
            str(template["version"]),
            ", ".join(template.get("params") or []),
            str(template["created_at"]),
        ]
        table.add_row(*row, *([str(template.get("action", ""))] if pushed else []))
    return table


def key_table(key: Mapping[str, Any]) -> Table:
    """One key's details, a field a line (the policy's fields each on their own)."""
    table = Table("field", "value", show_header=False)
    for field, value in key.items():
        if field == "policy" and isinstance(value, Mapping):
            for name, setting in value.items():
                table.add_row(f"policy.{name}", _plain(setting))
        else:
            table.add_row(field, _plain(value))
    return table


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    return "-" if value is None else str(value)


def campaign_table(campaign: Mapping[str, Any]) -> Table:
    """A campaign: its status, rows, recipients per status and the first errors."""
    table = Table("field", "value", show_header=False)
    for field in ("campaign_id", "email_id", "status", "send_at"):
        table.add_row(field, _plain(campaign.get(field)))
    rows = campaign.get("rows") or {}
    table.add_row("rows", ", ".join(f"{name} {count}" for name, count in rows.items()))
    counts = campaign.get("counts") or {}
    table.add_row("recipients", ", ".join(f"{s} {n}" for s, n in counts.items() if n) or "-")
    table.add_row("errors", str(campaign.get("error_count", 0)))
    for error in (campaign.get("errors") or [])[:10]:
        table.add_row(f"  line {error['line']}", f"{error['field']}: {error['message']}")
    return table
