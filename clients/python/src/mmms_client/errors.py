"""``MmmsError``: every failure of a call, the service's error envelope or no answer at all.

MmmsError            status, error_type, message, details, request_id
  status 4xx/5xx     the envelope of SPEC section 3 (error_type as the service names it)
  status 0           error_type "network_error": the service could not be reached
"""

from __future__ import annotations

from typing import Any


class MmmsError(Exception):
    """A refused or failed call; ``request_id`` is the answer's ``X-Request-Id``."""

    def __init__(
        self,
        *,
        status: int,
        error_type: str,
        message: str,
        details: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.details = details
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.status} {self.error_type}: {self.message}{where}"
