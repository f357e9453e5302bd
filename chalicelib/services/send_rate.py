"""Send-rate governance: every instance paces its sends to each provider's maximum rate.

A real SES account sends 14 emails/s by default; Lambda may run hundreds of consumers. Rather
than let most sends be throttled (and retried), each send first reserves a slot in the
provider's shared schedule (``SendSlotRepository``: one row per provider in PostgreSQL, so
all instances share it) and waits for it. When the schedule is full further than
``max_wait_seconds`` ahead, the send is refused as *throttled* before it reaches the
provider: the recipient goes back to the queue (back-pressure), the provider sees nothing.

Rates: ``<PROVIDER>_MAX_SEND_RATE`` (emails/s); for SES, when unset, the account's
``SendQuota.MaxSendRate`` read once per process. A provider without a rate is not paced. If
the database cannot be reached the send goes ahead unpaced: throttling backoff still applies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from chalicelib.errors import DatabaseUnavailableError, ProviderThrottledError
from chalicelib.providers.base import MailProvider
from chalicelib.repositories.send_rate import SendSlotRepository

log = logging.getLogger("mmms.send_rate")


class SendRateGovernor:
    def __init__(
        self,
        slots: SendSlotRepository,
        configured_rates: dict[str, float],
        *,
        max_wait_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._slots = slots
        self._configured = configured_rates
        self._max_wait = max_wait_seconds
        self._sleep = sleep

    def rate_of(self, provider: MailProvider) -> float | None:
        """The configured rate, else what the provider reports of itself (SES), else None."""
        configured = self._configured.get(provider.name)
        if configured is not None:
            return configured
        reported = getattr(provider, "max_send_rate", None)
        return reported() if callable(reported) else None

    def pace(self, mail_provider: MailProvider) -> float:
        """Wait for the provider's next send slot; return the seconds waited.

        Raises ProviderThrottledError when no slot is free within ``max_wait_seconds``.
        """
        provider = mail_provider.name
        rate = self.rate_of(mail_provider)
        if not rate:
            return 0.0
        try:
            slot = self._slots.reserve(provider, 1.0 / rate, self._max_wait)
        except DatabaseUnavailableError:
            log.warning(
                "send rate unknown (database unreachable): not paced", extra={"provider": provider}
            )
            return 0.0
        if slot is None:
            raise ProviderThrottledError(
                provider,
                f"send rate budget full ({rate:g}/s) for more than {self._max_wait:g} s:"
                " retried later",
            )
        self._sleep(slot.wait_seconds)
        return slot.wait_seconds
