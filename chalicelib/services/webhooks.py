"""Signed provider webhooks in: verify, parse, apply (SPEC 9).

A webhook whose key is not configured does not exist (404). A request that is not signed
by the configured key, is stale, or (Mailgun) replays a token already accepted is a 401 and
changes nothing. Payloads are parsed only once the signature holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.errors import (
    NotFoundError,
    PayloadTooLargeError,
    RequestValidationError,
    UnauthorizedError,
)
from chalicelib.events import mailgun
from chalicelib.events.common import MalformedEventError
from chalicelib.events.mailgun import SignatureError
from chalicelib.models.lifecycle import ProviderEvent
from chalicelib.repositories.suppressions import WebhookTokenRepository
from chalicelib.services.events import EventsApplied, EventService

if TYPE_CHECKING:  # cryptography loads only where SendGrid's signatures are checked
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey


@dataclass(frozen=True)
class WebhookKeys:
    mailgun_signing_key: str | None
    sendgrid_public_key: EllipticCurvePublicKey | None  # loaded by bootstrap when configured
    max_age_seconds: float
    max_events: int


class WebhookService:
    def __init__(
        self, events: EventService, tokens: WebhookTokenRepository, keys: WebhookKeys
    ) -> None:
        self._events = events
        self._tokens = tokens
        self._keys = keys

    def mailgun(self, body: bytes) -> EventsApplied:
        key = self._keys.mailgun_signing_key
        if key is None:
            raise NotFoundError("The Mailgun webhook is not configured")
        payload = _json(body)
        if not isinstance(payload, dict):
            raise UnauthorizedError("Mailgun webhook: no signature block")
        try:
            signature = mailgun.verify_signature(payload, key, self._keys.max_age_seconds)
        except SignatureError as err:
            raise UnauthorizedError(f"Mailgun webhook: {err}") from err
        events = _parsed(lambda: mailgun.parse_mailgun_event(payload))
        if not self._tokens.remember(mailgun.PROVIDER, signature.token):
            raise UnauthorizedError("Mailgun webhook: this token was used before (replay)")
        try:
            return self._events.apply_all(events)
        except BaseException:
            self._tokens.forget(mailgun.PROVIDER, signature.token)  # let Mailgun's retry in
            raise

    def sendgrid(self, body: bytes, signature: str | None, timestamp: str | None) -> EventsApplied:
        key = self._keys.sendgrid_public_key
        if key is None:
            raise NotFoundError("The SendGrid webhook is not configured")
        from chalicelib.events import sendgrid

        try:
            sendgrid.verify_signature(
                key, signature, timestamp, body, max_age_seconds=self._keys.max_age_seconds
            )
        except SignatureError as err:
            raise UnauthorizedError(f"SendGrid webhook: {err}") from err
        payload = _json(body)
        if isinstance(payload, list) and len(payload) > self._keys.max_events:
            raise PayloadTooLargeError(
                f"{len(payload)} events in one request; at most {self._keys.max_events}"
                " (WEBHOOK_MAX_EVENTS)"
            )
        events = _parsed(lambda: sendgrid.parse_sendgrid_events(payload))
        return self._events.apply_all(events)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _parsed(parse: Any) -> list[ProviderEvent]:
    try:
        events: list[ProviderEvent] = parse()
    except MalformedEventError as err:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ["body"], "msg": str(err), "input": None}],
            message="Not a webhook payload of the documented format",
        ) from err
    return events
