"""Migrations apply once, twice is a no-op, and two processes at once do not collide."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg.conninfo import make_conninfo

from chalicelib.migrate import apply_migrations, migration_files
from tests.support.database import isolated_schema
from tests.support.waiting import wait_until

ADVISORY_LOCK_KEY = 0x4D4D4D53  # chalicelib.migrate's: "MMMS" in ASCII


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


def runners_waiting_for_the_lock(conninfo: str, application_name: str) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND wait_event_type = 'Lock'"
            " AND wait_event = 'advisory'",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_two_runners_at_once_apply_each_migration_once(postgres_url: str) -> None:
    """Both runners are started while the migration lock is held, and it is let go only once
    both wait for it: they really do arrive together."""
    runner_name = f"mmms-migrate-{uuid.uuid4().hex[:8]}"
    with isolated_schema(postgres_url) as url:
        runner_url = make_conninfo(url, application_name=runner_name)
        with psycopg.connect(url, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            with ThreadPoolExecutor(max_workers=2) as pool:
                runs = [pool.submit(apply_migrations, runner_url) for _ in range(2)]
                wait_until(
                    lambda: runners_waiting_for_the_lock(url, runner_name) == 2,
                    "both runners to wait for the migration lock",
                )
                holder.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
                results = [run.result(timeout=30) for run in runs]

        every_version = [version for version, _ in migration_files()]
        assert sorted(results, key=len) == [[], every_version]  # the second found them done
        with psycopg.connect(url) as conn:
            count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert count == (len(every_version),)
