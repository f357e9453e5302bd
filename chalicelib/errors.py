"""The MMMS exception tree, and how each branch maps to the HTTP error envelope.

Adapters translate SDK and driver errors into these types at their boundary
(``raise ... from err``); services raise them; ``chalicelib.http`` turns them into
the SPEC section 3 envelope in exactly one place (:func:`envelope_for`).

::

    MMMSError
    ├── ClientError                      the caller can fix the request (4xx)
    │   ├── BusinessRuleError            400 business_error
    │   ├── UnauthorizedError            401 unauthorized
    │   ├── ForbiddenError               403 forbidden: the key's policy refuses the request
    │   ├── NotFoundError                404 not_found
    │   ├── ConflictError                409 conflict: the resource's state refuses the action
    │   ├── MethodNotAllowedError        405 method_not_allowed
    │   ├── PayloadTooLargeError         413 payload_too_large
    │   ├── UnsupportedMediaTypeError    415 unsupported_media_type
    │   ├── RequestValidationError       422 validation_error (details: Pydantic's error list)
    │   └── RateLimitedError             429 rate_limited (Retry-After)
    ├── ServiceUnavailableError          503 service_unavailable: nothing was half-done
    │   ├── DatabaseUnavailableError
    │   ├── QueueUnavailableError
    │   ├── CaptchaUnavailableError      the CAPTCHA verifier cannot say
    │   └── StorageUnavailableError      the upload store (S3) cannot be reached
    ├── ConfigurationError               a setting is missing or invalid (start-up)
    ├── BatchIncompleteError             some SQS records must be retried (raised to Lambda)
    └── ProviderError                    raised by mail providers (``chalicelib.providers``)
        ├── ProviderUnavailableError     transient: fail over to the next provider, retry later
        │   └── ProviderThrottledError   over the provider's send rate: back off, same provider
        └── MessageRejectedError         permanent: never retried, never failed over

Anything else reaching the HTTP layer is a 500 ``internal_error`` whose body says
nothing about the cause (the log line has it).
"""

from __future__ import annotations

from typing import Any


class MMMSError(Exception):
    """Base of every error MMMS raises on purpose."""

    status: int = 500
    error_type: str = "internal_error"
    error: str = "Internal server error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def headers(self) -> dict[str, str]:
        """Extra response headers this error calls for."""
        return {}


class ClientError(MMMSError):
    status = 400


class BusinessRuleError(ClientError):
    status = 400
    error_type = "business_error"
    error = "Business logic error"


class UnauthorizedError(ClientError):
    """Every authentication failure. The message always starts ``Unauthorized - ``."""

    status = 401
    error_type = "unauthorized"
    error = "Unauthorized"

    def __init__(self, reason: str) -> None:
        super().__init__(f"Unauthorized - {reason}")


class ForbiddenError(ClientError):
    """The key is known but its policy refuses this request; ``details[].loc`` names the field."""

    status = 403
    error_type = "forbidden"
    error = "Forbidden"


class NotFoundError(ClientError):
    status = 404
    error_type = "not_found"
    error = "Resource not found"


class MethodNotAllowedError(ClientError):
    status = 405
    error_type = "method_not_allowed"
    error = "Method not allowed"

    def __init__(self, method: str, allowed: list[str]) -> None:
        super().__init__(f"Method {method} is not allowed here", details={"allowed": allowed})
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class ConflictError(ClientError):
    """The resource is in a state that refuses the action (SPEC 3)."""

    status = 409
    error_type = "conflict"
    error = "Conflict"


class PayloadTooLargeError(ClientError):
    status = 413
    error_type = "payload_too_large"
    error = "Payload too large"


class UnsupportedMediaTypeError(ClientError):
    status = 415
    error_type = "unsupported_media_type"
    error = "Unsupported media type"


class RequestValidationError(ClientError):
    """The request is not what the API accepts; ``details`` is a Pydantic-style error list."""

    status = 422
    error_type = "validation_error"
    error = "Validation failed"

    def __init__(
        self, details: list[dict[str, Any]], message: str = "Request validation failed"
    ) -> None:
        super().__init__(message, details=details)


class RateLimitedError(ClientError):
    status = 429
    error_type = "rate_limited"
    error = "Too many requests"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class ServiceUnavailableError(MMMSError):
    status = 503
    error_type = "service_unavailable"
    error = "Service unavailable"


class DatabaseUnavailableError(ServiceUnavailableError):
    def __init__(self, message: str = "The database is unreachable; try again shortly") -> None:
        super().__init__(message)


class QueueUnavailableError(ServiceUnavailableError):
    def __init__(self, message: str = "The queue is unreachable; nothing was queued") -> None:
        super().__init__(message)


class CaptchaUnavailableError(ServiceUnavailableError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"The CAPTCHA could not be verified ({reason}); try again shortly")


class StorageUnavailableError(ServiceUnavailableError):
    def __init__(self, message: str = "The upload store is unreachable; try again shortly") -> None:
        super().__init__(message)


class ConfigurationError(MMMSError):
    """A setting is missing or invalid. The message names the setting."""


class BatchIncompleteError(MMMSError):
    """Raised by the SQS handler so Lambda leaves the records to retry on the queue.

    The handler deletes the records that succeeded before raising, so only the others come
    back; this works whether or not ``ReportBatchItemFailures`` is configured.
    """


class ProviderError(MMMSError):
    """Raised by a mail provider. ``provider`` names it; ``response`` is what it answered."""

    def __init__(self, provider: str, message: str, *, response: Any = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.response = response


class ProviderUnavailableError(ProviderError):
    """Transient: network error, timeout, 5xx, throttling. Fail over, retry later."""

    error_type = "service_unavailable"
    status = 503


class ProviderThrottledError(ProviderUnavailableError):
    """The provider is up but refuses more sends for now (rate exceeded): back-pressure, not an
    outage. Retried on the same provider with backoff; never trips the breaker or fails over."""


class MessageRejectedError(ProviderError):
    """Permanent: the provider refused this message (bad address, content, auth)."""

    error_type = "business_error"
    status = 400
    error = "Business logic error"


def envelope_for(exc: MMMSError, request_id: str) -> dict[str, Any]:
    """The SPEC section 3 error body for ``exc``."""
    return {
        "status": exc.status,
        "error": exc.error,
        "error_type": exc.error_type,
        "message": exc.message,
        "details": exc.details,
        "request_id": request_id,
    }


def internal_error_envelope(request_id: str) -> dict[str, Any]:
    """The body of a 500: says nothing about the cause (the log line does)."""
    return envelope_for(MMMSError("An internal error occurred"), request_id)
