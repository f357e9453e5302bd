"""What the sync and the async client share: a call, its headers, the retry rule, the answer.

A call is described once (``Call``: method, path, query, body, which credentials, whether it
is idempotent); each client only performs it. The retry rule (SPEC section 14): an
idempotent call is tried again after a 429, a 503 or a network error, waiting what
``Retry-After`` asks (seconds or an HTTP date) or an exponential backoff with jitter, at most
``retries`` times. A ``Retry-After`` longer than ``max_retry_delay`` is not waited for: the
429 is raised at once. A call that is not idempotent (creating a key, a template, a
campaign) is never retried: a lost answer must not become a second key.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Literal, TypeVar, cast
from urllib.parse import quote

import httpx

from mmms_client.errors import MmmsError

T = TypeVar("T")
Auth = Literal["key", "admin", "any", "none"]
RETRY_STATUSES = frozenset({429, 503})


def segment(value: str) -> str:
    """A path segment as RFC 3986 allows it: ``a+b@x.org`` stays, ``a b/c`` is ``a%20b%2Fc``."""
    return quote(value, safe="!$&'()*+,;=:@")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call; ``T`` is the type of the answer's ``data``."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    auth: Auth = "key"
    idempotent: bool | None = None  # None: every method but POST

    @property
    def retryable(self) -> bool:
        return self.idempotent if self.idempotent is not None else self.method != "POST"

    def query(self) -> dict[str, Any]:
        return {name: value for name, value in self.params.items() if value is not None}


@dataclass(frozen=True)
class Settings:
    """Where and as whom to call, and how patiently (shared by both clients)."""

    base_url: str
    api_key: str | None = None
    origin: str | None = None
    admin_token: str | None = None
    captcha_token: str | None = None
    retries: int = 3
    retry_delay: float = 0.5
    max_retry_delay: float = 30.0
    timeout: float = 30.0

    def headers(self, call: Call[Any]) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if call.auth in ("key", "any") and self.api_key:
            headers["X-Api-Key"] = self.api_key
        if call.auth in ("admin", "any") and self.admin_token:
            headers["Authorization"] = f"Bearer {self.admin_token}"
        if call.auth != "none" and self.captcha_token:
            headers["X-Captcha-Token"] = self.captcha_token
        if self.origin:
            headers["Origin"] = self.origin
        return headers

    def wait_before_retry(
        self, call: Call[Any], attempt: int, response: httpx.Response | None
    ) -> float | None:
        """Seconds to wait before trying ``call`` again, or None to stop.

        ``response`` is None after a network error.
        """
        if not call.retryable or attempt >= self.retries:
            return None
        backoff = min(self.max_retry_delay, self.retry_delay * 2.0**attempt)
        if response is None:
            return backoff * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)
        if response.status_code not in RETRY_STATUSES:
            return None
        asked = retry_after(response.headers.get("retry-after"))
        wait = backoff if asked is None else asked
        return wait if wait <= self.max_retry_delay else None


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def data_of(response: httpx.Response, call: Call[T]) -> T:
    """The answer's ``data``, or the MmmsError its envelope describes."""
    try:
        payload = response.json() if response.content else None
    except json.JSONDecodeError:
        payload = None
    if response.is_success:
        # The envelope's data; a bare answer (GET /v1/health: "OK") as it is.
        data = payload["data"] if isinstance(payload, dict) and "data" in payload else payload
        return cast(T, data)
    envelope = payload if isinstance(payload, dict) else {}
    raise MmmsError(
        status=response.status_code,
        error_type=str(envelope.get("error_type") or "http_error"),
        message=str(
            envelope.get("message") or f"{call.method} {call.path} answered {response.status_code}"
        ),
        details=envelope.get("details"),
        request_id=envelope.get("request_id") or response.headers.get("x-request-id"),
    )


def network_error(call: Call[Any], url: str, error: httpx.TransportError) -> MmmsError:
    why = (
        "timed out"
        if isinstance(error, httpx.TimeoutException)
        else str(error) or type(error).__name__
    )
    return MmmsError(
        status=0,
        error_type="network_error",
        message=f"{call.method} {url} failed: {why}: the service is unreachable",
    )
