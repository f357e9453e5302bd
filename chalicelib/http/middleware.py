"""The one ``http`` middleware: request id, access log, CORS, and Chalice's own errors.

It must never raise (an exception here would become Chalice's bare 500), so it only reads
and decorates the finished response. Chalice answers a few requests itself before any view
runs (415 for a non-JSON content type, 400 when it cannot parse, 500 on its own faults);
those bodies are rewritten into our envelope here.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response

from chalicelib.errors import (
    MethodNotAllowedError,
    MMMSError,
    RequestValidationError,
    UnsupportedMediaTypeError,
    envelope_for,
    internal_error_envelope,
)
from chalicelib.http.context import CALLER_KEY_ID, VERIFIED_ORIGIN
from chalicelib.http.cors import add_cors_headers, statically_allowed
from chalicelib.logs import REQUEST_ID

log = logging.getLogger("mmms.http")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Keys may appear in paths (DELETE /v1/api-key/{api_key}); they never reach a log line.
_KEY_IN_PATH = re.compile(r"ak_[A-Za-z0-9_-]+")


def make_http_middleware(
    cors_allow_list: Callable[[], list[str]],
    origin_registered: Callable[[str], bool],
    declared_methods: Callable[[str], list[str]] = lambda _path: [],
) -> Callable[[Request, Callable[[Request], Response]], Response]:
    """The middleware.

    ``cors_allow_list`` reads CORS_ALLOW_ORIGINS (lazily, per request); ``origin_registered``
    says whether a live key allows an origin, asked only for error answers (a 401 to a front
    end must be readable by it) that no other rule lets through; ``declared_methods`` gives
    a route's methods (the ``Allow`` of a 405 for a method no route knows, e.g. TRACE).
    """

    def http_middleware(request: Request, get_response: Callable[[Request], Response]) -> Response:
        request_id = _pick_request_id(request)
        tokens = (REQUEST_ID.set(request_id), VERIFIED_ORIGIN.set(None), CALLER_KEY_ID.set(None))
        started = time.perf_counter()
        try:
            response = _own_envelope(get_response(request), request_id)
            if response.status_code == 405 and "Allow" in response.headers:
                path = str(request.context.get("resourcePath", ""))
                response.headers["Allow"] = ", ".join(declared_methods(path)) or "OPTIONS"
            response.headers["X-Request-Id"] = request_id
            _cors(request, response, cors_allow_list, origin_registered)
            _access_log(request, response, started)
            return response
        finally:
            CALLER_KEY_ID.reset(tokens[2])
            VERIFIED_ORIGIN.reset(tokens[1])
            REQUEST_ID.reset(tokens[0])

    return http_middleware


def _pick_request_id(request: Request) -> str:
    incoming = request.headers.get("x-request-id") if request is not None else None
    if isinstance(incoming, str) and _VALID_REQUEST_ID.match(incoming):
        return incoming
    aws_id = request.context.get("requestId") if request is not None else None
    if isinstance(aws_id, str) and _VALID_REQUEST_ID.match(aws_id):
        return aws_id
    return uuid.uuid4().hex


def request_method(body: dict[str, object]) -> str:
    """The method in Chalice's "Unsupported method: TRACE" message."""
    return str(body.get("Message", "")).rpartition(" ")[2] or "this method"


def _own_envelope(response: Response, request_id: str) -> Response:
    """Rewrite an error answered by Chalice itself (body ``{"Code": ...}``) as our envelope."""
    body = response.body
    if response.status_code < 400 or not (isinstance(body, dict) and "Code" in body):
        return response
    error: MMMSError
    if response.status_code == 415:
        error = UnsupportedMediaTypeError(str(body.get("Message", "Unsupported media type")))
        payload = envelope_for(error, request_id)
    elif response.status_code == 400:
        error = RequestValidationError(
            [
                {
                    "type": "bad_request",
                    "loc": ["body"],
                    "msg": str(body.get("Message", "")),
                    "input": None,
                }
            ]
        )
        payload = envelope_for(error, request_id)
    elif response.status_code == 405:  # a method no route declares (TRACE, CONNECT, ...)
        error = MethodNotAllowedError(request_method(body), [])
        payload = envelope_for(error, request_id)
        payload["details"] = None  # the Allow header says what is
    else:
        payload = internal_error_envelope(request_id)
        payload["status"] = response.status_code
    return Response(
        body=json.dumps(payload),
        status_code=payload["status"],
        headers={**response.headers, "Content-Type": "application/json"},
    )


def _cors(
    request: Request,
    response: Response,
    allow_list: Callable[[], list[str]],
    origin_registered: Callable[[str], bool],
) -> None:
    origin = request.headers.get("origin") if request is not None else None
    if not origin or "Access-Control-Allow-Origin" in response.headers:
        return
    try:
        allowed = (
            VERIFIED_ORIGIN.get() == origin
            or statically_allowed(origin, allow_list())
            or (response.status_code >= 400 and origin_registered(origin))
        )
    except Exception:
        log.warning("CORS allow-list unavailable", exc_info=True)
        allowed = False
    if allowed:
        add_cors_headers(response, origin)


def _redacted_path(request: Request) -> str | None:
    path = request.context.get("path") if request is not None else None
    return _KEY_IN_PATH.sub("ak_[redacted]", path) if isinstance(path, str) else None


def _access_log(request: Request, response: Response, started: float) -> None:
    fields: dict[str, Any] = {
        "event": "request",
        "method": getattr(request, "method", None),
        "route": getattr(request, "path", None),
        "path": _redacted_path(request),
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "key_id": CALLER_KEY_ID.get(),
    }
    log.info("request", extra=fields)
