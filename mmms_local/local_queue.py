"""A durable local stand-in for SQS, in the local PostgreSQL (``make run`` only).

It keeps SQS's semantics where the consumer depends on them: a received message is
invisible for ``visibility_seconds``, every receive counts, ``retry_later`` changes the
visibility, ``delete_many`` acknowledges, and a message received ``max_receives`` times
that comes back again moves to the dead-letter queue. Unlike an in-memory emulator it
survives a restart, so nothing queued is lost when ``make run`` stops.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from chalicelib.db import Database
from chalicelib.errors import DatabaseUnavailableError
from chalicelib.queues.base import QueueRecord

PROCESSING = "processing"
RESULTS = "results"
EVENTS = "events"
UPLOADS = "uploads"  # campaign files' notifications (S3's, on AWS)
DEAD_LETTER = "dead-letter"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mmms_local_queue (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue          text NOT NULL,
    body           text NOT NULL,
    receive_count  integer NOT NULL DEFAULT 0,
    visible_at     timestamptz NOT NULL DEFAULT now(),
    receipt        text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS mmms_local_queue_visible ON mmms_local_queue (queue, visible_at, id);
"""


def ensure_queue_table(database: Database) -> None:
    with database.transaction() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(4242)")
        conn.execute(_SCHEMA)


class LocalQueue:
    """One named queue; implements ProcessingQueue and ResultQueue, plus ``receive``."""

    def __init__(
        self,
        database: Database,
        name: str,
        *,
        max_receives: int = 5,
        visibility_seconds: int = 60,
    ) -> None:
        self._db = database
        self.name = name
        self._max_receives = max_receives
        self._visibility = visibility_seconds

    def send_many(self, bodies: list[str], delay_seconds: int = 0) -> list[int]:
        try:
            with self._db.statement() as conn:
                conn.execute(
                    "INSERT INTO mmms_local_queue (queue, body, visible_at)"
                    " SELECT %s, body, now() + make_interval(secs => %s)"
                    " FROM unnest(%s::text[]) WITH ORDINALITY AS t(body, n) ORDER BY n",
                    (self.name, delay_seconds, bodies),
                )
        except DatabaseUnavailableError:
            return list(range(len(bodies)))
        return []

    def publish_many(self, bodies: list[str]) -> list[int]:
        return self.send_many(bodies)

    def receive(self, max_messages: int = 10) -> list[QueueRecord]:
        """Up to ``max_messages`` visible messages, now invisible for the visibility timeout."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE mmms_local_queue SET queue = %s, receipt = NULL"
                " WHERE queue = %s AND visible_at <= now() AND receive_count >= %s",
                (DEAD_LETTER, self.name, self._max_receives),
            )
            rows = conn.execute(
                """
                WITH picked AS (
                    SELECT id FROM mmms_local_queue
                     WHERE queue = %(queue)s AND visible_at <= now()
                     ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
                UPDATE mmms_local_queue q
                   SET receive_count = q.receive_count + 1,
                       visible_at = now() + make_interval(secs => %(visibility)s),
                       receipt = %(receipt)s || q.id
                  FROM picked WHERE q.id = picked.id
                RETURNING q.id, q.body, q.receipt, q.receive_count
                """,
                {
                    "queue": self.name,
                    "limit": max_messages,
                    "visibility": self._visibility,
                    "receipt": f"{uuid.uuid4().hex}:",
                },
            ).fetchall()
        return [
            QueueRecord(str(row["id"]), row["body"], row["receipt"], row["receive_count"])
            for row in sorted(rows, key=lambda r: int(r["id"]))
        ]

    def delete_many(self, receipt_handles: list[str]) -> None:
        if not receipt_handles:
            return
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM mmms_local_queue WHERE receipt = ANY(%s)", (receipt_handles,))

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE mmms_local_queue SET visible_at = now() + make_interval(secs => %s)"
                " WHERE receipt = %s",
                (delay_seconds, receipt_handle),
            )

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest messages still on this queue, parsed (for the dev pages)."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT body FROM mmms_local_queue WHERE queue = %s ORDER BY id DESC LIMIT %s",
                (self.name, limit),
            ).fetchall()
        return [json.loads(row["body"]) for row in rows]

    def count(self) -> int:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM mmms_local_queue WHERE queue = %s", (self.name,)
            ).fetchone()
        return int(row["n"]) if row else 0
