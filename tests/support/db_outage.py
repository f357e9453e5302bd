"""A database outage on demand: a TCP proxy in front of PostgreSQL that a test can cut.

The shared PostgreSQL server is never stopped (other test runs use it): the app is pointed
at this proxy instead, and ``cut()`` closes every connection through it and refuses new
ones, which is what the app sees when the server goes away; ``restore()`` lets connections
through again.

    with PostgresProxy(database_url) as proxy:
        services = wire(database_url=proxy.conninfo)
        proxy.cut()
        ...
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_CHUNK = 65536


class PostgresProxy:
    def __init__(self, conninfo: str) -> None:
        params = conninfo_to_dict(conninfo)
        self._target = (str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.conninfo = make_conninfo(conninfo, host="127.0.0.1", port=port, sslmode="disable")
        self._lock = threading.Lock()
        self._down = False
        self._closed = False
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> PostgresProxy:
        threading.Thread(target=self._accept, daemon=True, name="pg-proxy").start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        self._listener.close()
        self._close_all()

    def cut(self) -> None:
        """The database goes away: open connections drop, new ones are refused."""
        with self._lock:
            self._down = True
        self._close_all()

    def restore(self) -> None:
        """The database is back (connections dropped by ``cut`` stay dropped)."""
        with self._lock:
            self._down = False

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                down = self._down
            if down:
                client.close()  # refused, as by a server that is not there
                continue
            server = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
