"""Per-API-key rate limiting: at most N requests per key per minute (fixed windows).

The count lives in PostgreSQL, so every Lambda instance shares it. A refused request gets
429 with ``Retry-After`` (seconds until the window ends) and does nothing else.

The window is the minute of the database's clock (one clock for every instance), unless a
``clock`` is handed in: tests pass one to stand on either side of a minute boundary.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import datetime

from chalicelib.errors import RateLimitedError
from chalicelib.repositories.rate_limits import RateLimitRepository


class RateLimiter:
    def __init__(
        self,
        repository: RateLimitRepository,
        per_minute: int,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._repo = repository
        self._per_minute = per_minute
        self._clock = clock

    def check(self, api_key_id: uuid.UUID) -> None:
        """Count this request; RateLimitedError when the key is over its limit. 0 = no limit."""
        if self._per_minute <= 0:
            return
        window = self._repo.hit(api_key_id, self._clock() if self._clock else None)
        if window.hits > self._per_minute:
            raise RateLimitedError(
                f"More than {self._per_minute} requests per minute for this API key",
                retry_after_seconds=max(1, math.ceil(window.seconds_left)),
            )

    def prune(self) -> int:
        """Forget windows ended more than ten minutes ago; how many were deleted."""
        return self._repo.prune()
