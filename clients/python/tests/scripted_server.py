"""A scripted HTTP server on a free loopback port, for the client's retry and error rules.

Each request gets the next scripted answer (the last one repeats) and is recorded with its
arrival time, so tests assert on what reached the server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DROP = "drop"  # close the connection without an answer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Script:
    answers: list[Any]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""


def ok(data: Any, status: int = 200) -> dict[str, Any]:
    return {"status": status, "json": {"status": status, "message": "OK", "data": data}}


def failure(status: int, error_type: str, message: str, **extra: Any) -> dict[str, Any]:
    envelope = {
        "status": status,
        "error": "Error",
        "error_type": error_type,
        "message": message,
        "details": extra.get("details"),
        "request_id": "req-1",
    }
    return {"status": status, "headers": extra.get("headers", {}), "json": envelope}


@contextmanager
def scripted(*answers: Any) -> Iterator[Script]:
    script = Script(list(answers))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            script.seen.append(Seen(self.command, self.path, headers, body, time.monotonic()))
            answer = script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
            if answer == DROP:
                self.close_connection = True
                self.connection.close()
                return
            payload = answer["text"] if "text" in answer else json.dumps(answer["json"])
            self.send_response(answer["status"])
            self.send_header("Content-Type", "application/json")
            for name, value in answer.get("headers", {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload.encode())))
            self.end_headers()
            self.wfile.write(payload.encode())

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
