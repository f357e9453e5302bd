"""Count database round trips: a TCP proxy in front of PostgreSQL that counts turns.

A round trip is the client speaking after the server has (or for the first time): every
query, ``BEGIN``, ``COMMIT`` and the pool's connection check is one, whatever the driver
does inside. The count is independent of the code measured, so it can be compared before
and after a change. The proxy adds latency of its own, so timings are taken without it.

    with RoundTripCounter(database_url) as counter:
        ...use counter.conninfo...
        before = counter.round_trips
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_CHUNK = 65536


class RoundTripCounter:
    def __init__(self, conninfo: str) -> None:
        params = conninfo_to_dict(conninfo)
        self._target = (str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        # sslmode=disable: an SSL stream's records would still count right, but keep it plain.
        self.conninfo = make_conninfo(conninfo, host="127.0.0.1", port=port, sslmode="disable")
        self._count = 0
        self._lock = threading.Lock()
        self._closed = False
        self._sockets: list[socket.socket] = []

    @property
    def round_trips(self) -> int:
        with self._lock:
            return self._count

    def __enter__(self) -> RoundTripCounter:
        threading.Thread(target=self._accept, daemon=True, name="rt-accept").start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sockets.append(sock)
            # Whose turn it was last, per connection: the client speaking after the server
            # (or first) starts a round trip.
            state = {"last": "server"}
            for source, sink, side in ((client, server, "client"), (server, client, "server")):
                threading.Thread(
                    target=self._pump, args=(source, sink, side, state), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, side: str, state: dict[str, str]
    ) -> None:
        try:
            while data := source.recv(_CHUNK):
                with self._lock:
                    if side == "client" and state["last"] == "server":
                        self._count += 1
                    state["last"] = side
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
