"""SQL for API keys and their origins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from chalicelib.db import Database


@dataclass(frozen=True)
class Origin:
    name: str
    created_at: datetime


@dataclass(frozen=True)
class ApiKeyRecord:
    id: uuid.UUID
    name: str
    is_active: bool
    created_at: datetime
    expires_at: datetime | None
    deleted_at: datetime | None
    origins: tuple[Origin, ...]
    mode: str = "live"
    kind: str = "browser"
    allowed_ips: tuple[str, ...] = ()
    # Only the policy fields set on the key (the service fills in the defaults).
    policy: dict[str, Any] = field(default_factory=dict)


_SELECT_KEY = """
SELECT k.id, k.name, k.is_active, k.created_at, k.expires_at, k.deleted_at, k.mode,
       k.kind, k.allowed_ips::text[] AS allowed_ips, k.policy,
       coalesce(array_agg(o.name ORDER BY o.seq)
                FILTER (WHERE o.name IS NOT NULL), '{}') AS origin_names,
       coalesce(array_agg(o.created_at ORDER BY o.seq)
                FILTER (WHERE o.name IS NOT NULL), '{}') AS origin_times
  FROM api_keys k
  LEFT JOIN api_key_origins o ON o.api_key_id = k.id
"""


class ApiKeyRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def create(
        self,
        *,
        name: str,
        key_hash: bytes,
        origin_names: list[str],
        expires_at: datetime | None,
        mode: str = "live",
        kind: str = "browser",
        allowed_ips: list[str] | None = None,
        policy: dict[str, Any] | None = None,
    ) -> ApiKeyRecord:
        key_id = uuid.uuid4()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys"
                " (id, name, key_hash, expires_at, mode, kind, allowed_ips, policy)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s::cidr[], %s)",
                (
                    key_id,
                    name,
                    key_hash,
                    expires_at,
                    mode,
                    kind,
                    allowed_ips or [],
                    Jsonb(policy or {}),
                ),
            )
            if origin_names:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO api_key_origins (api_key_id, name) VALUES (%s, %s)"
                        " ON CONFLICT DO NOTHING",
                        [(key_id, origin) for origin in origin_names],
                    )
            row = conn.execute(_SELECT_KEY + " WHERE k.id = %s GROUP BY k.id", (key_id,)).fetchone()
        assert row is not None  # noqa: S101 - inserted in this transaction
        return _record(row)

    def find_by_hash(self, key_hash: bytes) -> ApiKeyRecord | None:
        with self._db.statement() as conn:
            row = conn.execute(
                _SELECT_KEY + " WHERE k.key_hash = %s GROUP BY k.id", (key_hash,)
            ).fetchone()
        return _record(row) if row else None

    def find_by_id(self, key_id: uuid.UUID) -> ApiKeyRecord | None:
        with self._db.statement() as conn:
            row = conn.execute(_SELECT_KEY + " WHERE k.id = %s GROUP BY k.id", (key_id,)).fetchone()
        return _record(row) if row else None

    def soft_delete(self, key_id: uuid.UUID) -> bool:
        """Deactivate and mark deleted; False when it was already deleted or never existed."""
        with self._db.statement() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET is_active = false, deleted_at = now()"
                " WHERE id = %s AND deleted_at IS NULL",
                (key_id,),
            )
            return cur.rowcount == 1

    def add_origins(self, key_id: uuid.UUID, origin_names: list[str]) -> list[Origin]:
        """Add origins (existing ones are kept as they are); return the requested ones."""
        with self._db.transaction() as conn:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO api_key_origins (api_key_id, name) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING",
                    [(key_id, origin) for origin in origin_names],
                )
            rows = conn.execute(
                "SELECT name, created_at FROM api_key_origins"
                " WHERE api_key_id = %s AND name = ANY(%s)",
                (key_id, origin_names),
            ).fetchall()
        by_name = {row["name"]: Origin(row["name"], row["created_at"]) for row in rows}
        return [by_name[name] for name in origin_names]

    def update(
        self,
        key_id: uuid.UUID,
        *,
        policy_changes: dict[str, Any] | None,
        allowed_ips: list[str] | None,
    ) -> ApiKeyRecord | None:
        """Apply a PATCH in one statement: policy fields given replace the stored ones (a
        ``None`` value removes the field: back to its default); ``allowed_ips`` replaces the
        list when not None. None when the key is deleted or unknown."""
        changes = policy_changes or {}
        set_fields = {name: value for name, value in changes.items() if value is not None}
        cleared = [name for name, value in changes.items() if value is None]
        with self._db.transaction() as conn:
            updated = conn.execute(
                "UPDATE api_keys SET policy = (policy - %s::text[]) || %s,"
                " allowed_ips = coalesce(%s::cidr[], allowed_ips), updated_at = now()"
                " WHERE id = %s AND deleted_at IS NULL",
                (cleared, Jsonb(set_fields), allowed_ips, key_id),
            )
            if updated.rowcount != 1:
                return None
            row = conn.execute(_SELECT_KEY + " WHERE k.id = %s GROUP BY k.id", (key_id,)).fetchone()
        return _record(row) if row else None

    def any_active_key_allows(self, candidates: list[str]) -> bool:
        """True when an active, unexpired key lists one of the candidate origin names."""
        with self._db.statement() as conn:
            row = conn.execute(
                "SELECT 1 FROM api_key_origins o JOIN api_keys k ON k.id = o.api_key_id"
                " WHERE o.name = ANY(%s) AND k.is_active AND k.deleted_at IS NULL"
                "   AND (k.expires_at IS NULL OR k.expires_at > now()) LIMIT 1",
                (candidates,),
            ).fetchone()
        return row is not None


def _record(row: dict[str, Any]) -> ApiKeyRecord:
    names = row["origin_names"]
    times = row["origin_times"]
    assert isinstance(names, list)  # noqa: S101 - array_agg
    assert isinstance(times, list)  # noqa: S101 - array_agg
    return ApiKeyRecord(
        id=row["id"],
        name=str(row["name"]),
        is_active=bool(row["is_active"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        deleted_at=row["deleted_at"],
        origins=tuple(Origin(n, t) for n, t in zip(names, times, strict=True)),
        mode=str(row["mode"]),
        kind=str(row["kind"]),
        allowed_ips=tuple(row["allowed_ips"] or ()),
        policy=dict(row["policy"] or {}),
    )
