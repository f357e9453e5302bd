"""A local imitation of Mailgun's and SendGrid's send APIs, for provider tests.

``running_provider_api()`` starts a :class:`http.server.ThreadingHTTPServer` on
127.0.0.1 (free port) that answers

- ``POST /v3/<domain>/messages.mime`` like Mailgun: HTTP basic auth ``api:<key>``,
  ``multipart/form-data`` with one or more ``to`` fields and a ``message`` file part;
  ``200 {"id": "<...>", "message": "Queued. Thank you."}``, or the documented errors
  (401 ``Forbidden``, 400/404 ``{"message": ...}``);
- ``POST /v3/mail/send`` like SendGrid: ``Authorization: Bearer <key>``, the JSON body
  (personalizations with a non-empty ``to``, unique addresses across to/cc/bcc, ``from``,
  ``subject``, ``content`` with ``text/plain`` first and no empty value, base64
  attachments); ``202`` with an empty body and ``X-Message-Id``, or
  ``{"errors": [{"message", "field", "help"}]}``.

Every request is recorded (``requests``). ``script(provider, reply, times)`` makes the next
requests to that provider answer ``"unavailable"`` (503), ``"throttled"`` (429),
``"invalid_recipient"`` (400, the provider's own wording) or ``"timeout"`` (no answer for
``hang_seconds``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

MAILGUN_API_KEY = "key-mailgun-test-0123456789"
MAILGUN_DOMAIN = "mg.example.com"
SENDGRID_API_KEY = "SG.sendgrid-test-0123456789"

Provider = Literal["mailgun", "sendgrid"]
Reply = Literal["unavailable", "throttled", "invalid_recipient", "timeout"]

_MAILGUN_PATH = re.compile(r"^/v3/(?P<domain>[^/]+)/messages\.mime$")
_SENDGRID_PATH = "/v3/mail/send"
_SENDGRID_HELP = "https://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"


@dataclass(frozen=True)
class UploadedFile:
    filename: str | None
    content_type: str
    content: bytes

    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.content)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordedRequest:
    provider: Provider | None
    path: str
    headers: dict[str, str]
    body: bytes
    form: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    json: Any = None
    answered_id: str | None = None  # the message id the imitation answered with

    def form_values(self, name: str) -> list[str]:
        return [value for key, value in self.form if key == name]


class FakeProviderApi:
    """The running server's state: what it received and what it will answer next."""

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[RecordedRequest] = []
        self.hang_seconds = 2.0
        self._scripts: dict[Provider, deque[Reply]] = {"mailgun": deque(), "sendgrid": deque()}
        self._lock = threading.Lock()
        self.released = threading.Event()

    def script(self, provider: Provider, reply: Reply, times: int = 1) -> None:
        with self._lock:
            self._scripts[provider].extend([reply] * times)

    def requests_to(self, provider: Provider) -> list[RecordedRequest]:
        return [r for r in self.requests if r.provider == provider]

    def _record(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            scripted = self._scripts.get(request.provider) if request.provider else None
            return scripted.popleft() if scripted else None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``requests`` instead."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        match = _MAILGUN_PATH.match(self.path)
        provider: Provider | None = (
            "mailgun" if match else "sendgrid" if self.path == _SENDGRID_PATH else None
        )
        request = RecordedRequest(provider, self.path, headers, body)
        api = self.server.api
        reply = api._record(request)
        if reply == "timeout":
            api.released.wait(api.hang_seconds)
            return
        if provider == "mailgun" and match:
            self._mailgun(request, match["domain"], reply)
        elif provider == "sendgrid":
            self._sendgrid(request, reply)
        else:
            self._answer(404, {"message": "Not Found"})

    def _mailgun(self, request: RecordedRequest, domain: str, reply: Reply | None) -> None:
        expected = base64.b64encode(f"api:{MAILGUN_API_KEY}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            self._answer(401, "Forbidden")
            return
        if domain != MAILGUN_DOMAIN:
            self._answer(404, {"message": f"Domain not found: {domain}"})
            return
        try:
            request.form, request.files = parse_form_data(
                request.headers.get("content-type", ""), request.body
            )
        except ValueError as err:
            self._answer(400, {"message": str(err)})
            return
        problem = _mailgun_problem(request, reply)
        if problem is not None:
            self._answer(*problem)
            return
        message_id = f"<{secrets.token_hex(8)}.1@{MAILGUN_DOMAIN}>"
        request.answered_id = message_id
        self._answer(200, {"id": message_id, "message": "Queued. Thank you."})

    def _sendgrid(self, request: RecordedRequest, reply: Reply | None) -> None:
        if request.headers.get("authorization") != f"Bearer {SENDGRID_API_KEY}":
            self._answer(
                401,
                _sendgrid_errors(
                    ("The provided authorization grant is invalid, expired, or revoked", None)
                ),
            )
            return
        try:
            request.json = json.loads(request.body)
        except ValueError:
            self._answer(400, _sendgrid_errors(("Bad Request", None)))
            return
        problem = _sendgrid_problem(request.json, reply)
        if problem is not None:
            self._answer(*problem)
            return
        request.answered_id = secrets.token_urlsafe(16)
        self.send_response(202)
        self.send_header("X-Message-Id", request.answered_id)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, status: int, body: Any) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _mailgun_problem(request: RecordedRequest, reply: Reply | None) -> tuple[int, Any] | None:
    if reply == "unavailable":
        return 503, {"message": "Service Unavailable"}
    if reply == "throttled":
        return 429, {"message": "Too Many Requests"}
    if not request.form_values("to"):
        return 400, {"message": "'to' parameter is missing"}
    if "message" not in request.files:
        return 400, {"message": "'message' parameter is missing"}
    if reply == "invalid_recipient":
        return 400, {"message": "to parameter is not a valid address. please check documentation"}
    return None


def _sendgrid_problem(body: Any, reply: Reply | None) -> tuple[int, Any] | None:
    if reply == "unavailable":
        return 503, _sendgrid_errors(("Service Unavailable", None))
    if reply == "throttled":
        return 429, _sendgrid_errors(("too many requests", None))
    errors = _sendgrid_validation(body if isinstance(body, dict) else {})
    if reply == "invalid_recipient":
        errors.append(("Does not contain a valid address.", "personalizations.0.to.0.email"))
    return (400, _sendgrid_errors(*errors)) if errors else None


def _sendgrid_validation(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    personalization = (body.get("personalizations") or [{}])[0]
    errors = _sendgrid_address_errors(personalization)
    if not (body.get("from") or {}).get("email"):
        errors.append(("The from object must be provided for every email send.", "from"))
    if not body.get("subject") and not personalization.get("subject"):
        errors.append(("The subject is required.", "subject"))
    content = body.get("content") or []
    types = [part.get("type") for part in content]
    if not content or any(not part.get("value") for part in content):
        errors.append(
            (
                "The content value must be a string at least one character in length.",
                "content.0.value",
            )
        )
    if "text/plain" in types and types[0] != "text/plain":
        errors.append(("If present, text/plain must be first, followed by text/html.", "content"))
    return errors + _sendgrid_attachment_errors(body.get("attachments", []))


def _sendgrid_address_errors(personalization: dict[str, Any]) -> list[tuple[str, str | None]]:
    errors: list[tuple[str, str | None]] = []
    if not personalization.get("to"):
        errors.append(
            (
                "The to array is required for all personalization objects, "
                "and must have at least one email object with a valid email address.",
                "personalizations.0.to",
            )
        )
    seen: set[str] = set()
    for kind in ("to", "cc", "bcc"):
        for address in personalization.get(kind, []):
            email = str(address.get("email", "")).lower()
            if email in seen:
                errors.append(
                    (
                        f"Each email address in the personalization block should be "
                        f"unique between to, cc, and bcc. We found the first duplicate "
                        f"instance of [{email}] in the personalizations.0.{kind} field.",
                        f"personalizations.0.{kind}",
                    )
                )
            seen.add(email)
    return errors


def _sendgrid_attachment_errors(attachments: list[Any]) -> list[tuple[str, str | None]]:
    errors: list[tuple[str, str | None]] = []
    for index, attachment in enumerate(attachments):
        try:
            base64.b64decode(attachment.get("content", ""), validate=True)
        except binascii.Error:
            errors.append(
                ("The attachment content must be base64 encoded.", f"attachments.{index}.content")
            )
        if not attachment.get("filename"):
            errors.append(("The attachment filename is required.", f"attachments.{index}.filename"))
    return errors


def _sendgrid_errors(*errors: tuple[str, str | None]) -> dict[str, Any]:
    return {
        "errors": [
            {"message": m, "field": f, "help": _SENDGRID_HELP if f else None} for m, f in errors
        ]
    }


def parse_form_data(
    content_type: str, body: bytes
) -> tuple[list[tuple[str, str]], dict[str, UploadedFile]]:
    """``multipart/form-data`` fields and files, file contents byte-exact.

    Split by hand: the stdlib ``cgi`` module is gone in 3.13, and the ``email`` parser would
    re-parse an uploaded message instead of keeping its bytes.
    """
    header = EmailMessage()
    header["Content-Type"] = content_type
    boundary = header.get_boundary()
    if header.get_content_type() != "multipart/form-data" or not boundary:
        raise ValueError("expected multipart/form-data with a boundary")
    sections = body.split(b"--" + boundary.encode())
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise ValueError("malformed multipart body")
    fields: list[tuple[str, str]] = []
    files: dict[str, UploadedFile] = {}
    for section in sections[1:-1]:
        head, separator, content = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("form part without headers")
        content = content.removesuffix(b"\r\n")
        part = BytesHeaderParser(policy=policy.HTTP).parsebytes(head + b"\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ValueError("form part without a name")
        filename = part.get_filename()
        if filename is None:
            fields.append((name, content.decode()))
        else:
            files[name] = UploadedFile(filename, part.get("Content-Type", ""), content)
    return fields, files


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, api: FakeProviderApi) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and left is expected here, not a failure."""


@contextmanager
def running_provider_api() -> Iterator[FakeProviderApi]:
    api = FakeProviderApi()
    server = _Server(api)
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield api
    finally:
        api.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
