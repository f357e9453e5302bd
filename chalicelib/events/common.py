"""Helpers the event parsers share: event keys, timestamps, and the parse error."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


class MalformedEventError(ValueError):
    """The payload is not an event of the documented format (logged, acknowledged)."""


def digest_key(prefix: str, payload: Any) -> str:
    """A stable key for an event without an id of its own: a digest of its canonical JSON."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return f"{prefix}:{hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:40]}"


def iso_time(value: object) -> datetime:
    """An ISO-8601 timestamp (``2017-08-05T00:41:02.669Z``), or now when absent/invalid."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return datetime.now(UTC)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def epoch_time(value: object) -> datetime:
    """Seconds since the epoch (int, float or numeric string), or now when absent/invalid."""
    if isinstance(value, int | float | str):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (ValueError, OverflowError, OSError):
            pass
    return datetime.now(UTC)


def text(value: object, limit: int = 1000) -> str | None:
    """A short string for an event's detail (None for nothing)."""
    if value is None or value == "":
        return None
    return str(value)[:limit]


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def addresses(entries: object, key: str = "emailAddress") -> tuple[str, ...]:
    """Lower-case addresses from a list of ``{"emailAddress": ...}`` objects (or strings)."""
    found = []
    for entry in entries if isinstance(entries, list) else []:
        value = entry.get(key) if isinstance(entry, dict) else entry
        if isinstance(value, str) and value:
            found.append(_bare(value).lower())
    return tuple(found)


def _bare(address: str) -> str:
    """``Name <a@b>`` → ``a@b``."""
    if "<" in address and address.endswith(">"):
        return address[address.rindex("<") + 1 : -1]
    return address.strip()
