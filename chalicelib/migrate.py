"""Versioned SQL migrations: ``chalicelib/migrations/NNNN_name.sql``, applied in order, once.

Safe to run twice and from two processes at once: a session-level advisory lock serialises
runners, and each file is applied in its own transaction together with its row in
``schema_migrations``. Run it with ``python -m chalicelib.migrate`` (uses the settings'
database) or call :func:`apply_migrations` with a conninfo string.
"""

from __future__ import annotations

import logging
from importlib import resources

import psycopg

MIGRATIONS_PACKAGE = "chalicelib.migrations"
# Arbitrary constant shared by every MMMS process: "MMMS" in ASCII.
_ADVISORY_LOCK_KEY = 0x4D4D4D53

log = logging.getLogger("mmms.migrate")


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) of every migration shipped with the package, oldest first."""
    folder = resources.files(MIGRATIONS_PACKAGE)
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return [(name.removesuffix(".sql"), sql) for name, sql in files]


def apply_migrations(conninfo: str) -> list[str]:
    """Apply every pending migration; return the versions applied by this call."""
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in migration_files():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode("utf-8"))
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                log.info("migration applied", extra={"version": version})
                applied_now.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return applied_now


def main() -> None:
    from chalicelib.config import load_settings
    from chalicelib.credentials import resolve_conninfo
    from chalicelib.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    applied = apply_migrations(resolve_conninfo(settings))
    log.info("migrations up to date", extra={"applied": applied})


if __name__ == "__main__":
    main()
