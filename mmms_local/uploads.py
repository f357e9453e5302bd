"""Campaign file uploads under ``make run``: what S3 does on AWS, on the local server.

``POST /v1/campaigns`` answers an upload URL under ``/v1/dev/campaign-uploads/``. A ``PUT`` there
is taken by the HTTP handler itself, before Chalice (which reads a whole body into memory and
holds bodies to ``MAX_BODY_BYTES``): the body is streamed to the upload folder (at most
``CAMPAIGN_MAX_BYTES``, else 413), then the same S3-shaped ``ObjectCreated`` notification the
bucket sends on AWS goes on the local uploads queue, whose consumer (the local worker) runs the
same processing code as the Lambda. Browsers get the preflight S3's CORS rule gives.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote, urlparse

from chalice import local

PREFIX = "/v1/dev/campaign-uploads/"
CHUNK_BYTES = 1024 * 1024

# (status, message) when an upload to this key is refused; None when it is expected.
Expected = Callable[[str], tuple[int, str] | None]
Uploaded = Callable[[str, int], object]


def notification(key: str, size: int) -> str:
    """The body S3 puts on the uploads queue for a new object (keys arrive URL-encoded)."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": "local"},
                        "object": {"key": quote_plus(key, safe="/"), "size": size},
                    },
                }
            ]
        }
    )


def install(
    path_of: Callable[[str], Path], max_bytes: int, expected: Expected, uploaded: Uploaded
) -> None:
    """Take ``PUT``/``OPTIONS`` under :data:`PREFIX` in every local server from now on."""
    handler = local.ChaliceRequestHandler
    generic_put = handler.do_PUT
    generic_options = handler.do_OPTIONS

    def do_put(self: Any) -> None:
        if not self.path.startswith(PREFIX):
            generic_put(self)
            return
        _receive(self, path_of, max_bytes, expected, uploaded)

    def do_options(self: Any) -> None:
        if not self.path.startswith(PREFIX):
            generic_options(self)
            return
        _answer(
            self,
            204,
            None,
            {
                "Access-Control-Allow-Methods": "PUT",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "3600",
            },
        )

    handler.do_PUT = do_put
    handler.do_OPTIONS = do_options


def _receive(
    request: Any,
    path_of: Callable[[str], Path],
    max_bytes: int,
    expected: Expected,
    uploaded: Uploaded,
) -> None:
    key = unquote(urlparse(request.path).path[len(PREFIX) :])
    length = request.headers.get("Content-Length")
    if length is None or not length.isdigit():
        _answer(request, 411, "Content-Length is required", close=True)
        return
    size = int(length)
    if size > max_bytes:
        _answer(request, 413, f"the file is over CAMPAIGN_MAX_BYTES ({max_bytes})", close=True)
        return
    refused = expected(key)
    if refused is not None:
        _answer(request, refused[0], refused[1], close=True)
        return
    target = path_of(key)
    if target.exists():  # the campaign's notification may still be on its way
        _answer(request, 409, "this campaign's file was uploaded already", close=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    with os.fdopen(descriptor, "wb") as file:
        left = size
        while left:
            chunk = request.rfile.read(min(CHUNK_BYTES, left))
            if not chunk:
                break
            file.write(chunk)
            left -= len(chunk)
    if left:
        os.unlink(partial)
        _answer(request, 400, "the body ended before Content-Length", close=True)
        return
    os.replace(partial, target)
    _answer(request, 200, None)
    uploaded(key, size)


def _answer(
    request: Any,
    status: int,
    message: str | None,
    headers: dict[str, str] | None = None,
    *,
    close: bool = False,
) -> None:
    body = json.dumps({"status": status, "message": message}).encode() if message else b""
    request.send_response(status)
    request.send_header("Access-Control-Allow-Origin", "*")
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    if body:
        request.send_header("Content-Type", "application/json")
    if close:
        request.send_header("Connection", "close")
        request.close_connection = True
    request.end_headers()
    request.wfile.write(body)
