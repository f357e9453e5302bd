"""A local CAPTCHA verifier speaking the siteverify form of Turnstile, hCaptcha and reCAPTCHA.

``running_verifier()`` starts a :class:`http.server.ThreadingHTTPServer` on 127.0.0.1 (free
port) that answers ``POST /siteverify`` (``application/x-www-form-urlencoded``: ``secret``,
``response``, ``remoteip``) with ``{"success": true}`` when the secret is :data:`SECRET` and
the token is one of ``valid_tokens``, else ``{"success": false, "error-codes": [...]}`` as the
providers document. ``mode`` makes it answer ``"down"`` (HTTP 500) or ``"garbage"`` (not
JSON). Every form received is recorded (``forms``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs

SECRET = "0x4AAAAAAA-test-secret"
Mode = Literal["ok", "down", "garbage"]


@dataclass
class Verifier:
    url: str
    valid_tokens: set[str] = field(default_factory=lambda: {"good-token"})
    mode: Mode = "ok"
    forms: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def running_verifier() -> Iterator[Verifier]:
    verifier = Verifier(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length).decode("utf-8")
            form = {key: values[0] for key, values in parse_qs(raw).items()}
            verifier.forms.append(form)
            if verifier.mode == "down":
                self._answer(500, b"upstream error", "text/plain")
                return
            if verifier.mode == "garbage":
                self._answer(200, b"<html>maintenance</html>", "text/html")
                return
            if form.get("secret") != SECRET:
                body = {"success": False, "error-codes": ["invalid-input-secret"]}
            elif form.get("response") in verifier.valid_tokens:
                body = {"success": True, "hostname": "app.example.com"}
            else:
                body = {"success": False, "error-codes": ["invalid-input-response"]}
            self._answer(200, json.dumps(body).encode(), "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    verifier.url = f"http://127.0.0.1:{server.server_address[1]}/siteverify"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield verifier
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
