"""PostgreSQL access: one small psycopg 3 pool per process, opened on first use.

The pool is the only place driver errors about reachability are translated:
``psycopg.OperationalError`` (server down, connection lost) and ``PoolTimeout`` become
:class:`~chalicelib.errors.DatabaseUnavailableError` (503). Each ``transaction()`` block
commits on success and rolls back on any exception, so a failure leaves nothing half-done.

Round trips are the cost that counts (a send is a few statements on a network away), so:

- ``statement()`` is for work that is one statement: the connection is in autocommit, the
  statement is its own transaction, and no ``BEGIN``/``COMMIT`` round trips are spent;
- a connection is checked (one round trip) only when it comes out of the pool after being
  idle for ``CHECK_AFTER_IDLE_SECONDS``, as after a Lambda container was frozen; a
  connection that broke within that time fails its statement, which is a 503 or a retry
  like any database outage, and the pool replaces it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from chalicelib.errors import DatabaseUnavailableError

CHECK_AFTER_IDLE_SECONDS = 5.0


class Connection(psycopg.Connection[dict[str, Any]]):
    """A pooled connection that knows when it was last handed back."""

    returned_at: float = 0.0


def _check_if_idle(conn: Connection) -> None:
    if time.monotonic() - conn.returned_at > CHECK_AFTER_IDLE_SECONDS:
        ConnectionPool.check_connection(conn)


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
            # A Lambda container may be frozen for minutes: check an idle one before use.
            check=_check_if_idle,
            kwargs={
                "row_factory": dict_row,
                "connect_timeout": max(1, int(timeout_seconds)),
                "autocommit": True,
            },
            connection_class=Connection,
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
        with self._connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def statement(self) -> Iterator[Connection]:
        """A connection in autocommit: for work that is exactly one statement (which is then
        atomic on its own) without the two round trips of BEGIN and COMMIT."""
        with self._connection() as conn:
            yield conn

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        self._ensure_open()
        try:
            with self._pool.connection() as conn:
                try:
                    yield conn
                finally:
                    conn.returned_at = time.monotonic()
        except (psycopg.OperationalError, PoolTimeout) as err:
            raise DatabaseUnavailableError() from err

    def ping(self) -> None:
        """Raise DatabaseUnavailableError unless the database answers."""
        with self.statement() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False
