"""Per-request state: the request id, the verified origin, and the caller."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from chalice.app import Request
from pydantic import BaseModel

from chalicelib.errors import RequestValidationError
from chalicelib.logs import REQUEST_ID
from chalicelib.services.api_keys import Caller

M = TypeVar("M", bound=BaseModel)

# Set by authentication when the request's Origin was proven by its API key; read by CORS.
VERIFIED_ORIGIN: ContextVar[str | None] = ContextVar("mmms_verified_origin", default=None)
# Set by authentication: the key id for the access log line (never the key).
CALLER_KEY_ID: ContextVar[str | None] = ContextVar("mmms_caller_key_id", default=None)


def current_request_id() -> str:
    return REQUEST_ID.get() or uuid.uuid4().hex


@dataclass(frozen=True)
class RequestContext:
    """What a view gets: the Chalice request, its id, and (on protected routes) the caller."""

    request: Request
    request_id: str
    caller: Caller | None = None

    def body(self, model: type[M]) -> M:
        """The JSON body parsed into ``model``; a 422 when it is missing, not JSON or invalid."""
        raw = self.request.raw_body
        if not raw:
            raise RequestValidationError(
                [
                    {
                        "type": "missing",
                        "loc": ["body"],
                        "msg": "A JSON body is required",
                        "input": None,
                    }
                ],
                message="Request body is missing",
            )
        return model.model_validate_json(raw)

    def query(self, model: type[M]) -> M:
        """The query string parsed into ``model`` (a 422 for unknown or invalid parameters)."""
        params: Any = self.request.query_params or {}
        return model.model_validate({name: params[name] for name in params})

    def raw_bytes(self) -> bytes:
        """The body exactly as received (signatures are computed over these bytes)."""
        raw = self.request.raw_body or b""
        return raw.encode("utf-8") if isinstance(raw, str) else raw

    def require_caller(self) -> Caller:
        if self.caller is None:
            raise RuntimeError("route is not protected by an API key")
        return self.caller
