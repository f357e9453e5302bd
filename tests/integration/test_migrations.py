"""Migrations apply once, twice is a no-op, and two processes at once do not collide."""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chalicelib.migrate import apply_migrations, main, migration_files
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
                try:
                    wait_until(
                        lambda: runners_waiting_for_the_lock(url, runner_name) == 2,
                        "both runners to wait for the migration lock",
                    )
                finally:  # else a failed wait leaves the pool waiting on runners that wait on us
                    holder.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
                results = [run.result(timeout=30) for run in runs]

        every_version = [version for version, _ in migration_files()]
        assert sorted(results, key=len) == [[], every_version]  # the second found them done
        with psycopg.connect(url) as conn:
            count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert count == (len(every_version),)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def applied(self) -> list[object]:
        found = [r for r in self.records if r.getMessage() == "migrations up to date"]
        self.records.clear()
        return [getattr(r, "applied", None) for r in found]


def test_main_migrates_the_configured_database_and_says_so(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m chalicelib.migrate``: the settings' database, every migration, once."""
    with isolated_schema(postgres_url) as url:
        for name, value in {
            "DATABASE_URL": url,
            "ADMIN_TOKEN": "x" * 20,
            "MAIL_QUEUE_URL": "http://127.0.0.1:9/q",
            "MAIL_RESULT_QUEUE_URL": "http://127.0.0.1:9/r",
        }.items():
            monkeypatch.setenv(name, value)
        log = Records()  # main() configures the mmms loggers (JSON, no propagation)
        logging.getLogger("mmms.migrate").addHandler(log)
        try:
            main()
            first = log.applied()
            main()
            second = log.applied()
        finally:
            logging.getLogger("mmms.migrate").removeHandler(log)

        assert first == [[version for version, _ in migration_files()]]
        assert second == [[]]
        assert {"schema_migrations", "api_keys", "deliveries"} <= tables(url)
