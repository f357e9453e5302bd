"""A real PostgreSQL for tests: DATABASE_URL if set, else 127.0.0.1:5432, else embedded.

Each test run (each xdist worker) gets its own schema, dropped at the end, so runs never
see each other's rows and leave nothing behind.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgres_server() -> Iterator[str]:
    """The conninfo of a reachable PostgreSQL server."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    try:
        psycopg.connect(LOCAL_SERVER, connect_timeout=2).close()
    except psycopg.OperationalError:
        pass
    else:
        yield LOCAL_SERVER
        return
    from mmms_local.embedded_pg import start_embedded_postgres

    with tempfile.TemporaryDirectory(prefix="mmms-pg-") as folder:
        uri, server = start_embedded_postgres(Path(folder))
        try:
            yield uri
        finally:
            server.cleanup()


@contextmanager
def isolated_schema(server_conninfo: str) -> Iterator[str]:
    """A fresh schema on the server; yields a conninfo whose search_path is that schema."""
    schema = f"mmms_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield make_conninfo(server_conninfo, options=f"-c search_path={schema}")
    finally:
        with psycopg.connect(server_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


_EMPTYING: dict[str, sql.Composed] = {}


def truncate_all(conninfo: str) -> None:
    """Empty every MMMS table (not schema_migrations) in the conninfo's schema.

    ``DELETE`` rather than ``TRUNCATE``: a test leaves a few rows, and TRUNCATE's per-table
    file work cost 0.4-0.6 s before every test (16 tables), DELETE a few milliseconds. The
    tables are emptied children first (foreign keys), in one round trip; the order is worked
    out once per schema.
    """
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conninfo not in _EMPTYING:
            _EMPTYING[conninfo] = _delete_statements(conn)
        conn.execute(_EMPTYING[conninfo])


def _delete_statements(conn: psycopg.Connection[Any]) -> sql.Composed:
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename <> 'schema_migrations' ORDER BY tablename"
        )
    ]
    parents: dict[str, set[str]] = {table: set() for table in tables}
    for child, parent in conn.execute(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'f' AND n.nspname = current_schema()"
    ):
        if child != parent and child in parents and parent in parents:
            parents[child].add(parent)
    ordered: list[str] = []  # parents first; deleted in reverse (children first)
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in ordered and parents[t] <= set(ordered)]
        assert ready, f"foreign keys in a cycle among {set(tables) - set(ordered)}"
        ordered += ready
    return sql.SQL("; ").join(
        sql.SQL("DELETE FROM {}").format(sql.Identifier(table)) for table in reversed(ordered)
    )
