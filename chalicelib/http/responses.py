"""Building responses: the success envelope, and the one mapping from exceptions to errors."""

from __future__ import annotations

import json
import logging
from typing import Any

from chalice.app import Response
from pydantic import BaseModel, ValidationError

from chalicelib.errors import (
    ConfigurationError,
    MMMSError,
    RequestValidationError,
    envelope_for,
    internal_error_envelope,
)

log = logging.getLogger("mmms.http")

JSON_HEADERS = {"Content-Type": "application/json"}
_MAX_ECHOED_INPUT = 200


def success(message: str, data: BaseModel | dict[str, Any], status: int = 200) -> Response:
    """The success envelope ``{"status", "message", "data"}``."""
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    body = {"status": status, "message": message, "data": payload}
    return Response(body=json.dumps(body), status_code=status, headers=dict(JSON_HEADERS))


def error_response(exc: BaseException, request_id: str) -> Response:
    """The SPEC section 3 envelope for any exception; the only place errors become HTTP."""
    if isinstance(exc, ValidationError):
        exc = RequestValidationError(validation_details(exc))
    if isinstance(exc, MMMSError) and not isinstance(exc, ConfigurationError) and exc.status < 500:
        log.info(
            "request refused",
            extra={"status": exc.status, "error_type": exc.error_type, "reason": exc.message},
        )
        body = envelope_for(exc, request_id)
        headers: dict[str, str | list[str]] = {**JSON_HEADERS, **exc.headers()}
        return Response(body=json.dumps(body, default=str), status_code=exc.status, headers=headers)
    if isinstance(exc, MMMSError) and exc.status == 503:
        log.warning("service unavailable", extra={"reason": exc.message}, exc_info=exc)
        body = envelope_for(exc, request_id)
        return Response(body=json.dumps(body), status_code=503, headers=dict(JSON_HEADERS))
    log.error("unhandled error", exc_info=exc)
    return Response(
        body=json.dumps(internal_error_envelope(request_id)),
        status_code=500,
        headers=dict(JSON_HEADERS),
    )


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's error list, JSON-safe, with long inputs left out (no body echoed back)."""
    details = []
    for error in exc.errors(include_url=False):
        item: dict[str, Any] = {
            "type": error["type"],
            "loc": list(error["loc"]),
            "msg": error["msg"],
            "input": _short_input(error.get("input")),
        }
        if error.get("ctx"):
            item["ctx"] = {k: str(v) for k, v in error["ctx"].items()}
        details.append(item)
    return details


def _short_input(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        text = str(value)
        return value if len(text) <= _MAX_ECHOED_INPUT else None
    return None
