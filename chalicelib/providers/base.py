"""The one contract every mail provider keeps, and the message it sends.

A provider takes a fully built :class:`OutgoingMessage` and either returns a
:class:`SendResult` carrying the provider's message id, or raises

- :class:`~chalicelib.errors.ProviderUnavailableError` when the failure is transient
  (network error, timeout, 5xx, throttling): the chain fails over, the record is retried;
- :class:`~chalicelib.errors.MessageRejectedError` when the provider refused this message
  for good (invalid address, content refused): no failover,
  no retry.

Nothing else may escape ``send``: SDK and HTTP errors are translated at the provider's
boundary with ``raise ... from err``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Address:
    """A mailbox: address plus optional display name (may be non-ASCII)."""

    email: str
    name: str | None = None


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    """One fully rendered email, ready for any provider.

    ``message_id`` is the RFC 5322 ``Message-ID`` MMMS assigns (``<...@...>``) so the same
    email keeps one id whichever provider sends it. ``headers`` are extra headers
    (e.g. ``List-Unsubscribe``); ``tags`` are string metadata a provider may attach
    (SES message tags, Mailgun ``v:`` variables, SendGrid ``custom_args``).
    """

    sender: Address
    to: tuple[Address, ...]
    subject: str
    html: str
    text: str
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None

    @property
    def all_recipients(self) -> tuple[Address, ...]:
        """Every envelope recipient: to, cc and bcc."""
        return self.to + self.cc + self.bcc


@dataclass(frozen=True)
class SendResult:
    """What a provider answered. ``response`` is the provider's own body (e.g. SES's).

    ``follow_up`` are provider events, as SES would publish them, that a simulating
    provider (the simulator, the local capture) produces for this send; the delivery
    service puts them on the events path once the send is recorded.
    """

    provider: str
    message_id: str
    response: Mapping[str, Any] = field(default_factory=dict)
    follow_up: tuple[str, ...] = ()


@runtime_checkable
class MailProvider(Protocol):
    """A mail provider. ``name`` is what delivery records and results show."""

    name: str

    def send(self, message: OutgoingMessage) -> SendResult:
        """Send ``message`` or raise ProviderUnavailableError / MessageRejectedError."""
        ...

    def close(self) -> None:
        """Release connections kept between sends (SMTP). Safe to call twice."""
        ...
