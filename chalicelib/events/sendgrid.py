"""SendGrid's Event Webhook: the signature check and the event parser.

SendGrid's "Signed Event Webhook" (https://www.twilio.com/docs/sendgrid/for-developers/
tracking-events/getting-started-event-webhook-security-features) signs each request with
ECDSA P-256 / SHA-256 over ``X-Twilio-Email-Event-Webhook-Timestamp`` + the raw body; the
signature header ``X-Twilio-Email-Event-Webhook-Signature`` is base64 DER, the public key
(shown in SendGrid's settings) base64 DER SubjectPublicKeyInfo. Verification is done by the
``cryptography`` package. MMMS also refuses timestamps outside the freshness window.

The body is a JSON array of events (a batch). Events: delivered → delivered; bounce with
``type`` bounce → bounced, ``type`` blocked → soft_bounced; deferred → delayed; dropped →
rejected; spamreport → complained. processed, open, click, unsubscribe and group events:
ignored. The message is ``sg_message_id`` up to ``.filter…`` (the ``X-Message-Id`` the send
answered with); the event's own id is ``sg_event_id``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from chalicelib.events.common import MalformedEventError, digest_key, epoch_time, text
from chalicelib.events.mailgun import SignatureError
from chalicelib.models.lifecycle import EventKind, ProviderEvent

PROVIDER = "sendgrid"


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 DER (as SendGrid shows it) or PEM."""
    try:
        if "BEGIN PUBLIC KEY" in value:
            key = load_pem_public_key(value.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode("".join(value.split()), validate=True))
    except (ValueError, binascii.Error, TypeError) as err:
        raise ValueError("SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key") from err
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve key")
    return key


def verify_signature(
    public_key: ec.EllipticCurvePublicKey,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    *,
    max_age_seconds: float,
    now: datetime | None = None,
) -> None:
    if not signature or not timestamp:
        raise SignatureError("the signature or timestamp header is missing")
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as err:
        raise SignatureError("the signature is not base64") from err
    try:
        public_key.verify(der, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as err:
        raise SignatureError("the signature does not match") from err
    try:
        sent = float(timestamp)
    except ValueError as err:
        raise SignatureError("the timestamp is not a number") from err
    age = (now or datetime.now(UTC)).timestamp() - sent
    if abs(age) > max_age_seconds:
        raise SignatureError(f"the timestamp is {int(age)} s old; at most {int(max_age_seconds)} s")


def parse_sendgrid_events(payload: object) -> list[ProviderEvent]:
    """The lifecycle events of one webhook batch (kinds MMMS does not track are left out)."""
    if not isinstance(payload, list):
        raise MalformedEventError("the body is not a JSON array of events")
    events = []
    for item in payload:
        if not isinstance(item, dict):
            raise MalformedEventError("an event is not a JSON object")
        event = _event(item)
        if event is not None:
            events.append(event)
    return events


def _event(item: dict[str, Any]) -> ProviderEvent | None:
    kind = _kind(item.get("event"), item.get("type"))
    if kind is None:
        return None
    raw_id = item.get("sg_message_id")
    if not isinstance(raw_id, str) or not raw_id:
        return None  # e.g. a "dropped" event for a message SendGrid never gave an id
    message_id = raw_id.split(".filter", 1)[0]
    recipient = item.get("email")
    event_id = item.get("sg_event_id")
    return ProviderEvent(
        provider=PROVIDER,
        message_id=message_id,
        kind=kind,
        at=epoch_time(item.get("timestamp")),
        event_key=f"sendgrid:{event_id}" if event_id else digest_key("sendgrid", item),
        recipients=(recipient.lower(),) if isinstance(recipient, str) and recipient else (),
        detail=text(item.get("reason") or item.get("response") or item.get("event")),
    )


def _kind(name: object, bounce_type: object) -> EventKind | None:
    if name == "bounce":
        return EventKind.SOFT_BOUNCED if bounce_type == "blocked" else EventKind.BOUNCED
    return {
        "delivered": EventKind.DELIVERED,
        "deferred": EventKind.DELAYED,
        "dropped": EventKind.REJECTED,
        "spamreport": EventKind.COMPLAINED,
    }.get(str(name))
