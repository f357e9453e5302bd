"""Mailgun webhooks: the signature check and the event-data parser.

Mailgun signs each webhook request (one event per request) as documented in "Securing
Webhooks" (https://documentation.mailgun.com/docs/mailgun/user-manual/events/webhooks/):
``signature.signature`` is the hex HMAC-SHA256, keyed with the webhook signing key, of
``signature.timestamp`` + ``signature.token``. MMMS also refuses a timestamp outside the
freshness window and a token it has seen before (replay), as Mailgun recommends.

Events (``event-data.event``): delivered → delivered; failed with ``severity`` permanent →
bounced, temporary → soft_bounced; complained → complained; rejected → rejected. accepted,
opened, clicked, unsubscribed and stored are not lifecycle events: ignored. The message is
``event-data.message.headers.message-id`` (the id Mailgun answered the send with, without
angle brackets); the event's own id is ``event-data.id``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from chalicelib.events.common import MalformedEventError, as_dict, digest_key, epoch_time, text
from chalicelib.models.lifecycle import EventKind, MailgunSignature, ProviderEvent

PROVIDER = "mailgun"


class SignatureError(ValueError):
    """The request is not signed by the configured key (or is stale); nothing is applied."""


def verify_signature(
    payload: dict[str, Any], signing_key: str, max_age_seconds: float, now: datetime | None = None
) -> MailgunSignature:
    """The payload's signature block, verified; SignatureError otherwise."""
    try:
        signature = MailgunSignature.model_validate(payload.get("signature"))
    except ValidationError as err:
        raise SignatureError("the signature block is missing or malformed") from err
    expected = hmac.new(
        signing_key.encode("utf-8"),
        (signature.timestamp + signature.token).encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected, signature.signature.strip().lower()):
        raise SignatureError("the signature does not match")
    try:
        sent = float(signature.timestamp)
    except ValueError as err:
        raise SignatureError("the timestamp is not a number") from err
    age = (now or datetime.now(UTC)).timestamp() - sent
    if abs(age) > max_age_seconds:
        raise SignatureError(f"the timestamp is {int(age)} s old; at most {int(max_age_seconds)} s")
    return signature


def parse_mailgun_event(payload: dict[str, Any]) -> list[ProviderEvent]:
    """The lifecycle event in a webhook payload ([] for kinds MMMS does not track)."""
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise MalformedEventError("event-data is missing")
    name = data.get("event")
    kind = _kind(name, data.get("severity"))
    if kind is None:
        return []
    headers = as_dict(as_dict(data.get("message")).get("headers"))
    message_id = str(headers.get("message-id") or "").strip().strip("<>")
    if not message_id:
        raise MalformedEventError("event-data.message.headers.message-id is missing")
    recipient = data.get("recipient")
    status = as_dict(data.get("delivery-status"))
    detail = (
        status.get("description")
        or status.get("message")
        or data.get("reason")
        or as_dict(data.get("reject")).get("reason")
    )
    event_id = data.get("id")
    return [
        ProviderEvent(
            provider=PROVIDER,
            message_id=message_id,
            kind=kind,
            at=epoch_time(data.get("timestamp")),
            event_key=f"mailgun:{event_id}" if event_id else digest_key("mailgun", data),
            recipients=(recipient.lower(),) if isinstance(recipient, str) and recipient else (),
            detail=text(detail or name),
        )
    ]


def _kind(name: object, severity: object) -> EventKind | None:
    if name == "failed":
        return EventKind.BOUNCED if severity == "permanent" else EventKind.SOFT_BOUNCED
    return {
        "delivered": EventKind.DELIVERED,
        "complained": EventKind.COMPLAINED,
        "rejected": EventKind.REJECTED,
    }.get(str(name))
