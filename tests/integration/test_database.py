"""The connection pool: transactions are atomic, one-statement work spends no BEGIN/COMMIT,
and a connection broken while it sat idle is replaced before anyone uses it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from chalicelib import db
from chalicelib.db import Database
from chalicelib.errors import DatabaseUnavailableError


@pytest.fixture
def database(clean_database: str) -> Iterator[Database]:
    database = Database(clean_database, max_size=1)
    with database.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS pool_probe (n int)")
        conn.execute("DELETE FROM pool_probe")
    yield database
    with database.transaction() as conn:
        conn.execute("DROP TABLE pool_probe")
    database.close()


def _rows(database: Database) -> list[int]:
    with database.statement() as conn:
        return [row["n"] for row in conn.execute("SELECT n FROM pool_probe ORDER BY n")]


def _insert_then_fail(database: Database) -> None:
    with database.transaction() as conn:
        conn.execute("INSERT INTO pool_probe VALUES (1)")
        conn.execute("INSERT INTO pool_probe VALUES (1 / 0)")


def test_a_failing_transaction_leaves_nothing_behind(database: Database) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        _insert_then_fail(database)
    with database.transaction() as conn:
        conn.execute("INSERT INTO pool_probe VALUES (2)")
        conn.execute("INSERT INTO pool_probe VALUES (3)")
    assert _rows(database) == [2, 3]


def test_a_statement_commits_on_its_own(database: Database, clean_database: str) -> None:
    with database.statement() as conn:
        conn.execute("INSERT INTO pool_probe VALUES (7)")
        # Still holding the connection: another session already sees the row.
        with psycopg.connect(clean_database) as other:
            assert other.execute("SELECT n FROM pool_probe").fetchall() == [(7,)]


def _terminate_pool_backend(database: Database, clean_database: str) -> None:
    with database.statement() as conn:
        pid = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
    assert pid is not None
    with psycopg.connect(clean_database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid["pid"],))


def test_an_idle_connection_is_checked_and_replaced(
    database: Database, clean_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _terminate_pool_backend(database, clean_database)
    monkeypatch.setattr(db, "CHECK_AFTER_IDLE_SECONDS", 0.0)

    database.ping()  # the dead connection is found before use and a new one opened

    assert _rows(database) == []


def test_a_connection_broken_within_the_idle_window_fails_once_then_is_replaced(
    database: Database, clean_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "CHECK_AFTER_IDLE_SECONDS", 3600.0)
    _terminate_pool_backend(database, clean_database)

    with pytest.raises(DatabaseUnavailableError):
        database.ping()  # not checked (used a moment ago): the statement meets the break

    database.ping()
    assert _rows(database) == []
