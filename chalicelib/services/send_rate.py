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

A consumer batch sends 10 at once, so 10 threads want a slot at the same moment: their
reservations are coalesced (``_Coalescer``) into one statement for those waiting, not one
each, which also keeps the schedule's row (locked by every reservation of every instance)
from becoming the hot spot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from chalicelib.errors import DatabaseUnavailableError, ProviderThrottledError
from chalicelib.providers.base import MailProvider
from chalicelib.repositories.send_rate import SendSlotRepository, Slot

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
        self._coalescers: dict[str, _Coalescer] = {}
        self._coalescers_lock = threading.Lock()

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
            slot = self._coalescer(provider).take(1.0 / rate)
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

    def _coalescer(self, provider: str) -> _Coalescer:
        with self._coalescers_lock:
            if provider not in self._coalescers:
                self._coalescers[provider] = _Coalescer(
                    lambda count, spacing: self._reserve(provider, count, spacing)
                )
            return self._coalescers[provider]

    def _reserve(self, provider: str, count: int, spacing: float) -> list[Slot | None]:
        """``count`` slots, None for each that does not fit within the wait: in one statement
        when they fit; once the schedule is nearly full, one by one until it is."""
        capacity = int(self._max_wait / spacing) + 1  # slots a wait can cover at all
        granted: list[Slot | None] = []
        together = True
        while len(granted) < count:
            if together:
                wanted = min(count - len(granted), capacity)
                got = self._slots.reserve_many(provider, spacing, self._max_wait, wanted)
                together = bool(got)
            else:
                one = self._slots.reserve(provider, spacing, self._max_wait)
                if one is None:
                    break
                got = [one]
            granted += got
        return granted + [None] * (count - len(granted))


_LEAD = object()  # a waiting caller's turn to reserve for those waiting after it


class _Coalescer:
    """Concurrent reservations become one statement: a caller finding none in progress
    reserves for itself; callers arriving meanwhile wait, and when it is done the first of
    them reserves for all of them at once (and so on). Nobody waits for more than the
    statement in progress and its own."""

    def __init__(self, reserve: Callable[[int, float], list[Slot | None]]) -> None:
        self._reserve = reserve
        self._lock = threading.Lock()
        self._waiting: list[Future[object]] = []
        self._busy = False

    def take(self, spacing: float) -> Slot | None:
        ticket: Future[object] = Future()
        with self._lock:
            lead = not self._busy
            if lead:
                self._busy = True
            else:
                self._waiting.append(ticket)
        if not lead:
            answer = ticket.result()  # a slot, None, or the turn to lead (raises on error)
            if answer is not _LEAD:
                return answer if isinstance(answer, Slot) else None
        return self._lead(spacing)

    def _lead(self, spacing: float) -> Slot | None:
        with self._lock:
            followers, self._waiting = self._waiting, []
        try:
            slots = self._reserve(1 + len(followers), spacing)
            for ticket, slot in zip(followers, slots[1:], strict=True):
                ticket.set_result(slot)
        except BaseException as err:
            for ticket in followers:
                if not ticket.done():
                    ticket.set_exception(err)
            raise
        finally:
            self._pass_on()
        return slots[0]

    def _pass_on(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.pop(0).set_result(_LEAD)
            else:
                self._busy = False
