"""A hand-written mail provider for tests: records what it sent, fails when told to.

::

    primary = FakeProvider("primary").fail_unavailable(times=2)
    primary.send(message)   # raises ProviderUnavailableError (1st)
    primary.send(message)   # raises ProviderUnavailableError (2nd)
    primary.send(message)   # sent: primary.sent == [message]

``fail_unavailable()`` / ``fail_rejected()`` without ``times`` fail on every call until
``recover()``. Thread-safe, so it can stand in for a provider under the consumer's pool.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace
from typing import Any, Literal

from chalicelib.errors import (
    MessageRejectedError,
    ProviderError,
    ProviderThrottledError,
    ProviderUnavailableError,
)
from chalicelib.providers.base import Address, Attachment, OutgoingMessage, SendResult

Failure = Literal["unavailable", "rejected", "throttled"]

PDF_BYTES = b"%PDF-1.4\n" + bytes(range(256)) + b"\r\n\x00end"


def make_message(**overrides: Any) -> OutgoingMessage:
    """A realistic message (non-ASCII names and subject, cc, bcc); override any field."""
    values: dict[str, Any] = {
        "sender": Address("noreply@example.com", "Jöhn Dœ"),
        "to": (Address("alice@example.org", "Älice Müller"),),
        "cc": (Address("carol@example.org", "Carol"),),
        "bcc": (Address("bob@example.net"),),
        "reply_to": (Address("support@example.com", "Support"),),
        "subject": "Grüße ✓",
        "text": "Hallo Älice,\nschöne Grüße.",
        "html": "<p>Hallo <b>Älice</b>, schöne Grüße.</p>",
        "headers": {"List-Unsubscribe": "<mailto:unsubscribe@example.com>"},
        "tags": {"campaign": "spring-2026", "project id": "p/42"},
    }
    values.update(overrides)
    return OutgoingMessage(**values)


def with_attachment(message: OutgoingMessage) -> OutgoingMessage:
    """``message`` plus a binary PDF attachment with a non-ASCII file name."""
    attachment = Attachment("Rechnung März.pdf", "application/pdf", PDF_BYTES)
    return replace(message, attachments=(attachment,))


class FakeProvider:
    """A :class:`~chalicelib.providers.base.MailProvider` that keeps every message it sent."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.sent: list[OutgoingMessage] = []
        self.attempts = 0
        self.closed = False
        self._scripted: deque[Failure] = deque()
        self._always: Failure | None = None
        self._lock = threading.Lock()

    def fail_unavailable(self, times: int | None = None) -> FakeProvider:
        """Raise ProviderUnavailableError on the next ``times`` sends (every send if None)."""
        return self._script("unavailable", times)

    def fail_throttled(self, times: int | None = None) -> FakeProvider:
        """Raise ProviderThrottledError on the next ``times`` sends (every send if None)."""
        return self._script("throttled", times)

    def fail_rejected(self, times: int | None = None) -> FakeProvider:
        """Raise MessageRejectedError on the next ``times`` sends (every send if None)."""
        return self._script("rejected", times)

    def recover(self) -> FakeProvider:
        """Forget every scripted failure: the next send succeeds."""
        with self._lock:
            self._scripted.clear()
            self._always = None
        return self

    def send(self, message: OutgoingMessage) -> SendResult:
        with self._lock:
            self.attempts += 1
            failure = self._scripted.popleft() if self._scripted else self._always
            if failure is not None:
                raise self._error(failure)
            self.sent.append(message)
            number = len(self.sent)
        return SendResult(
            provider=self.name,
            message_id=f"{self.name}-{number}",
            response={"MessageId": f"{self.name}-{number}"},
        )

    def close(self) -> None:
        self.closed = True

    def _script(self, failure: Failure, times: int | None) -> FakeProvider:
        with self._lock:
            if times is None:
                self._always = failure
            else:
                self._scripted.extend([failure] * times)
        return self

    def _error(self, failure: Failure) -> ProviderError:
        if failure == "throttled":
            return ProviderThrottledError(self.name, "scripted throttle", response={"fake": True})
        if failure == "unavailable":
            return ProviderUnavailableError(self.name, "scripted outage", response={"fake": True})
        return MessageRejectedError(self.name, "scripted rejection", response={"fake": True})
