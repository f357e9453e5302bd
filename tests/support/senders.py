"""Mail senders for tests that need failures tied to recipients rather than call order."""

from __future__ import annotations

import threading

from chalicelib.errors import ProviderUnavailableError
from chalicelib.providers.base import OutgoingMessage, SendResult
from tests.support.fake_providers import FakeProvider


class RecipientOutage:
    """Unavailable for the listed recipients, the wrapped provider for everyone else."""

    def __init__(self, provider: FakeProvider, failing: set[str]) -> None:
        self.provider = provider
        self.failing = set(failing)
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> SendResult:
        recipient = message.to[0].email
        if recipient in self.failing:
            with self._lock:
                self.refused.append(recipient)
            raise ProviderUnavailableError("fake", f"{recipient}: scripted outage")
        return self.provider.send(message)

    def recover(self) -> None:
        self.failing.clear()
