"""Per-API-key rate limiting: at most N requests per key per minute (fixed windows).

The count lives in PostgreSQL, so every Lambda instance shares it. A refused request gets
429 with ``Retry-After`` (seconds until the window ends) and does nothing else.
"""

from __future__ import annotations

import math
import uuid

from chalicelib.errors import RateLimitedError
from chalicelib.repositories.rate_limits import RateLimitRepository


class RateLimiter:
    def __init__(self, repository: RateLimitRepository, per_minute: int) -> None:
        self._repo = repository
        self._per_minute = per_minute

    def check(self, api_key_id: uuid.UUID) -> None:
        """Count this request; RateLimitedError when the key is over its limit. 0 = no limit."""
        if self._per_minute <= 0:
            return
        window = self._repo.hit(api_key_id)
        if window.hits > self._per_minute:
            raise RateLimitedError(
                f"More than {self._per_minute} requests per minute for this API key",
                retry_after_seconds=max(1, math.ceil(window.seconds_left)),
            )

    def prune(self) -> int:
        return self._repo.prune()
