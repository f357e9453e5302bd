"""SQL for stored templates: a template row (name, latest version, archived) and its
immutable versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from chalicelib.db import Database


@dataclass(frozen=True)
class TemplateContent:
    """What one version holds, as the caller gave it (plus the placeholders it uses)."""

    name: str
    subject: str
    html: str
    text: str | None
    description: str | None
    sample_params: dict[str, str]
    params: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TemplateVersion:
    template_id: str
    version: int
    content: TemplateContent
    created_at: datetime
    seq: int = 0


_SELECT_VERSION = """
SELECT t.id AS template_id, t.seq, v.version, v.name, v.subject, v.html, v.text,
       v.description, v.sample_params, v.params, v.created_at
  FROM templates t
  JOIN template_versions v ON v.template_id = t.id
"""
_INSERT_VERSION = """
INSERT INTO template_versions
       (template_id, version, name, subject, html, text, description, sample_params, params)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
RETURNING created_at
"""


class TemplateRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def create(self, template_id: str, content: TemplateContent) -> TemplateVersion:
        with self._db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO templates (id, name, latest_version) VALUES (%s, %s, 1) RETURNING seq",
                (template_id, content.name),
            ).fetchone()
            assert row is not None  # noqa: S101 - INSERT ... RETURNING
            created = conn.execute(_INSERT_VERSION, _version_values(template_id, 1, content))
            at = created.fetchone()
        assert at is not None  # noqa: S101
        return TemplateVersion(template_id, 1, content, at["created_at"], int(row["seq"]))

    def add_version(self, template_id: str, content: TemplateContent) -> TemplateVersion | None:
        """The next version of a live template; None when it is unknown or archived. The
        update of ``latest_version`` orders concurrent writers: each gets its own number."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE templates SET latest_version = latest_version + 1, name = %s,"
                " updated_at = now() WHERE id = %s AND archived_at IS NULL"
                " RETURNING latest_version, seq",
                (content.name, template_id),
            ).fetchone()
            if row is None:
                return None
            version = int(row["latest_version"])
            at = conn.execute(
                _INSERT_VERSION, _version_values(template_id, version, content)
            ).fetchone()
        assert at is not None  # noqa: S101
        return TemplateVersion(template_id, version, content, at["created_at"], int(row["seq"]))

    def get(self, template_id: str, version: int | None = None) -> TemplateVersion | None:
        """A version (default: the latest) of a live template."""
        with self._db.statement() as conn:
            row = conn.execute(
                _SELECT_VERSION + " WHERE t.id = %s AND t.archived_at IS NULL"
                " AND v.version = coalesce(%s, t.latest_version)",
                (template_id, version),
            ).fetchone()
        return _version(row) if row else None

    def latest_page(self, after_seq: int, limit: int) -> list[TemplateVersion]:
        """Up to ``limit`` live templates after ``after_seq``, each at its latest version."""
        with self._db.statement() as conn:
            rows = conn.execute(
                _SELECT_VERSION
                + " WHERE t.archived_at IS NULL AND v.version = t.latest_version AND t.seq > %s"
                " ORDER BY t.seq LIMIT %s",
                (after_seq, limit),
            ).fetchall()
        return [_version(row) for row in rows]

    def archive(self, template_id: str) -> bool:
        """Archive a live template; False when it is unknown or archived already."""
        with self._db.statement() as conn:
            cur = conn.execute(
                "UPDATE templates SET archived_at = now(), updated_at = now()"
                " WHERE id = %s AND archived_at IS NULL",
                (template_id,),
            )
            return cur.rowcount == 1


def _version_values(template_id: str, version: int, content: TemplateContent) -> tuple[Any, ...]:
    return (
        template_id,
        version,
        content.name,
        content.subject,
        content.html,
        content.text,
        content.description,
        Jsonb(content.sample_params),
        content.params,
    )


def _version(row: dict[str, Any]) -> TemplateVersion:
    return TemplateVersion(
        template_id=str(row["template_id"]),
        version=int(row["version"]),
        content=TemplateContent(
            name=str(row["name"]),
            subject=str(row["subject"]),
            html=str(row["html"]),
            text=row["text"],
            description=row["description"],
            sample_params=dict(row["sample_params"] or {}),
            params=list(row["params"] or []),
        ),
        created_at=row["created_at"],
        seq=int(row["seq"]),
    )
