"""PostgreSQL access: one small psycopg 3 pool per process, opened on first use.

The pool is the only place driver errors about reachability are translated:
``psycopg.OperationalError`` (server down, connection lost) and ``PoolTimeout`` become
:class:`~chalicelib.errors.DatabaseUnavailableError` (503). Each ``transaction()`` block
commits on success and rolls back on any exception, so a failure leaves nothing half-done.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from chalicelib.errors import DatabaseUnavailableError

Connection = psycopg.Connection[dict[str, Any]]


class Database:
    """A lazily opened connection pool. Safe to share between threads."""

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 0,
        max_size: int = 4,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_seconds,
            open=False,
            # A Lambda container may be frozen for minutes: check before handing out.
            check=ConnectionPool.check_connection,
            kwargs={"row_factory": dict_row, "connect_timeout": max(1, int(timeout_seconds))},
            connection_class=psycopg.Connection[dict[str, Any]],
            name="mmms",
        )
        self._opened = False
        self._open_lock = threading.Lock()

    def _ensure_open(self) -> None:
        if self._opened:
            return
        with self._open_lock:
            if not self._opened:
                self._pool.open(wait=False)
                self._opened = True

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside a transaction: committed on exit, rolled back on error."""
        self._ensure_open()
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as err:
            raise DatabaseUnavailableError() from err

    def ping(self) -> None:
        """Raise DatabaseUnavailableError unless the database answers."""
        with self.transaction() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False
