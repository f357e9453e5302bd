"""Migrations apply once, twice is a no-op, and two processes at once do not collide."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg

from chalicelib.migrate import apply_migrations, migration_files
from tests.support.database import isolated_schema


def tables(conninfo: str) -> set[str]:
    with psycopg.connect(conninfo) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }


def test_applied_twice_is_a_no_op(postgres_url: str) -> None:
    with isolated_schema(postgres_url) as url:
        first = apply_migrations(url)
        second = apply_migrations(url)

        assert first == [version for version, _ in migration_files()]
        assert second == []
        assert {"schema_migrations", "api_keys", "api_key_origins"} <= tables(url)


def test_two_runners_at_once_apply_each_migration_once(postgres_url: str) -> None:
    with isolated_schema(postgres_url) as url:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(apply_migrations, [url, url]))

        applied = sorted(results[0] + results[1])
        assert applied == sorted(version for version, _ in migration_files())
        with psycopg.connect(url) as conn:
            count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert count is not None
        assert count[0] == len(applied)
