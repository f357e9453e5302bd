"""An ordered chain of providers with failover and a circuit breaker per provider.

``send`` tries the providers in order:

- a :class:`ProviderUnavailableError` counts against that provider and the next one is tried;
- before each attempt ``pace`` waits for the provider's next send slot (the shared send-rate
  schedule, ``services/send_rate.py``); a full schedule raises ProviderThrottledError,
  not retried here;
- a :class:`ProviderThrottledError` (over the provider's send rate) is retried on the same
  provider with exponential backoff and full jitter; if it lasts, it is re-raised: a
  throttle is back-pressure, not an outage, so it neither counts against the breaker nor
  fails over (the recipient is retried later through the queue);
- a :class:`MessageRejectedError` is re-raised at once: a rejected message is not failed over
  (another provider would refuse it too, or worse, deliver what the first one refused);
- when every provider failed or was skipped, :class:`ProviderUnavailableError` with
  ``provider="chain"`` is raised; its message and ``response["failures"]`` list each
  provider's reason.

Circuit breaker: after ``failure_threshold`` consecutive unavailable answers a provider is
skipped for ``cooldown_seconds``; then one trial send is let through (half-open). Success
closes the circuit, failure opens it for another cool-down. A rejection proves the provider
is up and resets its count.

Why not pybreaker (installed, 1.4.1): ``CircuitBreaker.call`` holds the breaker's lock for the
whole guarded call, so concurrent sends from the consumer's thread pool would queue behind
each other per provider (and behind a 10 s timeout when the provider hangs); and its clock is
``datetime.now`` with no injection point, so the cool-down could only be tested by sleeping.
The breaker below is a few dozen lines, locks only its counters, and takes ``clock``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

from chalicelib.errors import (
    MessageRejectedError,
    ProviderThrottledError,
    ProviderUnavailableError,
)
from chalicelib.providers.base import MailProvider, OutgoingMessage, SendResult

log = logging.getLogger("mmms.providers")


class CircuitBreaker:
    """Consecutive-failure breaker: closed → open (cool-down) → one half-open trial."""

    def __init__(
        self, failure_threshold: int, cooldown_seconds: float, clock: Callable[[], float]
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self._threshold = failure_threshold
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None

    def allow(self) -> bool:
        """Whether a call may go through now. Grants one trial per elapsed cool-down."""
        with self._lock:
            if self._opened_at is None:
                return True
            now = self._clock()
            if now - self._opened_at < self._cooldown:
                return False
            self._opened_at = now
            return True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self._threshold:
                self._opened_at = self._clock()


class ProviderChain:
    """A :class:`MailProvider` that delegates to ``providers`` in order (see module doc)."""

    name = "chain"

    def __init__(
        self,
        providers: Sequence[MailProvider],
        *,
        failure_threshold: int = 3,
        cooldown_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        throttle_retries: int = 3,
        throttle_base_delay: float = 0.2,
        throttle_max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
        pace: Callable[[MailProvider], object] = lambda _provider: None,
    ) -> None:
        if not providers:
            raise ValueError("a provider chain needs at least one provider")
        self.providers = tuple(providers)
        self._breakers = [
            CircuitBreaker(failure_threshold, cooldown_seconds, clock) for _ in self.providers
        ]
        self._throttle_retries = throttle_retries
        self._throttle_base_delay = throttle_base_delay
        self._throttle_max_delay = throttle_max_delay
        self._sleep = sleep
        self._jitter = jitter
        self._pace = pace

    def send(self, message: OutgoingMessage) -> SendResult:
        failures: list[str] = []
        for position, (provider, breaker) in enumerate(
            zip(self.providers, self._breakers, strict=True)
        ):
            if not breaker.allow():
                failures.append(f"{provider.name}: circuit open, skipped")
                self._log_failover(message, position, "circuit open")
                continue
            try:
                result = self._send_backing_off(provider, message)
            except MessageRejectedError:
                breaker.record_success()
                raise
            except ProviderThrottledError:
                # Up, but over its rate: not an outage. The recipient waits (the queue retries
                # it later) rather than going to the next, often costlier, provider.
                breaker.record_success()
                log.info("mail provider throttled", extra={"provider": provider.name})
                raise
            except ProviderUnavailableError as err:
                breaker.record_failure()
                failures.append(err.message)
                self._log_failover(message, position, err.message)
                continue
            breaker.record_success()
            return result
        raise ProviderUnavailableError(
            self.name,
            "every provider is unavailable: " + "; ".join(failures),
            response={"failures": failures},
        )

    def _send_backing_off(self, provider: MailProvider, message: OutgoingMessage) -> SendResult:
        """``provider.send``, retried while it is throttled: exponential backoff with full
        jitter (AWS's advice for throttled clients), at most ``throttle_retries`` times."""
        for attempt in range(self._throttle_retries + 1):
            # Wait for a send slot. A full schedule raises ProviderThrottledError at once: it
            # is seconds away, which no backoff here would wait out.
            self._pace(provider)
            try:
                return provider.send(message)
            except ProviderThrottledError:
                if attempt == self._throttle_retries:
                    raise
                ceiling = min(self._throttle_max_delay, self._throttle_base_delay * 2**attempt)
                self._sleep(self._jitter(0.0, ceiling))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        for provider in self.providers:
            provider.close()

    def _log_failover(self, message: OutgoingMessage, position: int, reason: str) -> None:
        rest = self.providers[position + 1 :]
        following = rest[0].name if rest else None
        log.warning(
            "mail provider unavailable, failing over"
            if following
            else "mail provider unavailable, no provider left",
            extra={
                "provider": self.providers[position].name,
                "next_provider": following,
                "reason": reason,
                "mail_message_id": message.message_id,
            },
        )
