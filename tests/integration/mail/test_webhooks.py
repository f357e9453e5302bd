"""Mailgun and SendGrid webhooks over real HTTP: signed payloads apply, anything else is 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.bootstrap import Container
from chalicelib.errors import DatabaseUnavailableError
from chalicelib.models.lifecycle import ProviderEvent
from chalicelib.services.events import EventsApplied
from chalicelib.services.webhooks import WebhookKeys, WebhookService
from tests.integration.mail.conftest import Wire
from tests.support.fake_providers import FakeProvider
from tests.support.local_server import serving
from tests.support.recording import record_sent

SIGNING_KEY = "key-mailgun-webhook-signing-0123456789"
PRIVATE_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY = base64.b64encode(
    PRIVATE_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


@pytest.fixture
def services(wire: Wire) -> Container:
    return wire(
        sender=FakeProvider("fake"),
        mailgun_webhook_signing_key=SIGNING_KEY,
        sendgrid_webhook_public_key=PUBLIC_KEY,
    )


@pytest.fixture
def base_url(services: Container) -> Iterator[str]:
    with serving() as url:
        yield url


def state(database: str) -> dict[str, tuple[str, int]]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT d.recipient, d.status, count(e.id) FROM deliveries d"
            " LEFT JOIN delivery_events e ON e.delivery_id = d.id GROUP BY d.id"
        ).fetchall()
    return {recipient: (status, events) for recipient, status, events in rows}


def suppressions(database: str) -> dict[str, str]:
    with psycopg.connect(database) as conn:
        return dict(conn.execute("SELECT address, reason FROM suppressions").fetchall())


# --- Mailgun ---------------------------------------------------------------------------


def mailgun_payload(
    message_id: str,
    recipient: str,
    event: str = "delivered",
    *,
    timestamp: float | None = None,
    token: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    stamp = str(int(timestamp if timestamp is not None else time.time()))
    token = token or uuid.uuid4().hex
    signature = hmac.new(SIGNING_KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": {
            "event": event,
            "id": uuid.uuid4().hex,
            "timestamp": time.time(),
            "recipient": recipient,
            "message": {"headers": {"message-id": message_id}},
            "delivery-status": {"code": 550, "description": "No such mailbox"},
            **data,
        },
    }


def test_mailgun_events_signed_with_the_key_are_applied(
    services: Container, base_url: str, clean_database: str
) -> None:
    delivered = record_sent(services, "a@example.org", "mg-1")
    record_sent(services, "b@example.org", "mg-2")

    first = requests.post(
        f"{base_url}/v1/events/mailgun",
        json=mailgun_payload(delivered.message_id or "", "a@example.org"),
        timeout=5,
    )
    second = requests.post(
        f"{base_url}/v1/events/mailgun",
        json=mailgun_payload("<mg-2>", "b@example.org", "failed", severity="permanent"),
        timeout=5,
    )

    assert first.status_code == 200, first.text
    assert first.json()["data"] == {"received": 1, "applied": 1}
    assert second.status_code == 200, second.text
    assert state(clean_database) == {
        "a@example.org": ("delivered", 1),
        "b@example.org": ("bounced", 1),
    }
    assert suppressions(clean_database) == {"b@example.org": "bounce"}


MAILGUN_REFUSALS = {
    # Mailgun signs the timestamp and the token (its documented scheme), not the event data.
    "signature": r"Mailgun webhook: the signature does not match",
    "token": r"Mailgun webhook: the signature does not match",
    "timestamp": r"Mailgun webhook: the signature does not match",
    "stale": r"Mailgun webhook: the timestamp is 36\d\d s old; at most 300 s",
    "future": r"Mailgun webhook: the timestamp is -3[56]\d\d s old; at most 300 s",
    "missing": r"Mailgun webhook: the signature block is missing or malformed",
    "not an object": r"Mailgun webhook: no signature block",
}


@pytest.mark.parametrize("tamper", sorted(MAILGUN_REFUSALS))
def test_a_mailgun_request_not_signed_with_the_key_is_401_and_changes_nothing(
    services: Container, base_url: str, clean_database: str, tamper: str
) -> None:
    record_sent(services, "a@example.org", "mg-1")
    stamp = time.time() + {"stale": -3600, "future": 3600}.get(tamper, 0)
    payload: Any = mailgun_payload(
        "mg-1", "a@example.org", "failed", severity="permanent", timestamp=stamp
    )
    if tamper == "signature":
        payload["signature"]["signature"] = "0" * 64
    elif tamper == "token":
        payload["signature"]["token"] += "x"
    elif tamper == "timestamp":
        payload["signature"]["timestamp"] = str(int(payload["signature"]["timestamp"]) + 1)
    elif tamper == "missing":
        del payload["signature"]
    elif tamper == "not an object":
        payload = [payload]

    answer = requests.post(f"{base_url}/v1/events/mailgun", json=payload, timeout=5)

    assert answer.status_code == 401
    assert answer.json()["error_type"] == "unauthorized"
    assert re.fullmatch(f"Unauthorized - {MAILGUN_REFUSALS[tamper]}", answer.json()["message"])
    assert state(clean_database) == {"a@example.org": ("sent", 0)}
    assert suppressions(clean_database) == {}


def test_a_replayed_mailgun_token_is_refused(
    services: Container, base_url: str, clean_database: str
) -> None:
    record_sent(services, "a@example.org", "mg-1")
    payload = mailgun_payload("mg-1", "a@example.org")

    first = requests.post(f"{base_url}/v1/events/mailgun", json=payload, timeout=5)
    replay = requests.post(f"{base_url}/v1/events/mailgun", json=payload, timeout=5)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert "replay" in replay.json()["message"]


# --- SendGrid --------------------------------------------------------------------------


def signed(body: bytes, timestamp: str | None = None) -> dict[str, str]:
    stamp = timestamp or str(int(time.time()))
    signature = PRIVATE_KEY.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def sendgrid_event(message_id: str, email: str, event: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": int(time.time()),
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": ["newsletter"],
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": f"{message_id}.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
        **extra,
    }


def test_a_signed_sendgrid_batch_is_applied(
    services: Container, base_url: str, clean_database: str
) -> None:
    record_sent(services, "a@example.org", "sg-a")
    record_sent(services, "b@example.org", "sg-b")
    record_sent(services, "c@example.org", "sg-c")
    body = json.dumps(
        [
            sendgrid_event("sg-a", "a@example.org", "processed"),
            sendgrid_event("sg-a", "a@example.org", "delivered", response="250 OK"),
            sendgrid_event("sg-b", "b@example.org", "bounce", type="bounce", reason="550 no"),
            sendgrid_event("sg-c", "c@example.org", "delivered"),
            sendgrid_event("sg-c", "c@example.org", "spamreport"),
            sendgrid_event("sg-c", "c@example.org", "open"),
        ]
    ).encode()

    answer = requests.post(
        f"{base_url}/v1/events/sendgrid", data=body, headers=signed(body), timeout=5
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"received": 4, "applied": 4}
    assert state(clean_database) == {
        "a@example.org": ("delivered", 1),
        "b@example.org": ("bounced", 1),
        "c@example.org": ("complained", 2),
    }
    assert suppressions(clean_database) == {
        "b@example.org": "bounce",
        "c@example.org": "complaint",
    }


@pytest.mark.parametrize("tamper", ["body", "timestamp", "stale", "missing"])
def test_a_sendgrid_request_not_signed_with_the_key_is_401_and_changes_nothing(
    services: Container, base_url: str, clean_database: str, tamper: str
) -> None:
    record_sent(services, "b@example.org", "sg-b")
    body = json.dumps([sendgrid_event("sg-b", "b@example.org", "bounce", type="bounce")]).encode()
    headers = signed(body, str(int(time.time()) - 3600) if tamper == "stale" else None)
    if tamper == "body":
        body = body.replace(b"b@example.org", b"x@example.org")
    elif tamper == "timestamp":
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(time.time()) + 1)
    elif tamper == "missing":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]

    answer = requests.post(f"{base_url}/v1/events/sendgrid", data=body, headers=headers, timeout=5)

    assert answer.status_code == 401
    assert state(clean_database) == {"b@example.org": ("sent", 0)}
    assert suppressions(clean_database) == {}


def test_webhooks_without_a_configured_key_do_not_exist(wire: Wire) -> None:
    wire(sender=FakeProvider("fake"))
    with serving() as url:
        mailgun = requests.post(f"{url}/v1/events/mailgun", json={}, timeout=5)
        sendgrid = requests.post(f"{url}/v1/events/sendgrid", json=[], timeout=5)

    assert (mailgun.status_code, sendgrid.status_code) == (404, 404)


# --- Edge cases ------------------------------------------------------------------------


class FailingEvents:
    """Stands in for the event service: the database goes away while events are applied."""

    def apply_all(self, events: list[ProviderEvent]) -> EventsApplied:
        raise DatabaseUnavailableError()


def test_a_token_whose_request_failed_is_forgotten_so_mailgun_can_retry(
    services: Container, clean_database: str
) -> None:
    record_sent(services, "a@example.org", "mg-1")
    body = json.dumps(mailgun_payload("mg-1", "a@example.org", "delivered")).encode()
    keys = WebhookKeys(SIGNING_KEY, None, max_age_seconds=300, max_events=1000)
    failing = WebhookService(FailingEvents(), services.webhook_tokens, keys)

    with pytest.raises(DatabaseUnavailableError):
        failing.mailgun(body)
    with psycopg.connect(clean_database) as conn:
        assert conn.execute("SELECT count(*) FROM webhook_tokens").fetchone() == (0,)
    retried = services.webhooks.mailgun(body)  # Mailgun's retry: same token, same signature

    assert (retried.received, retried.applied) == (1, 1)
    assert state(clean_database) == {"a@example.org": ("delivered", 1)}


def test_more_sendgrid_events_than_the_limit_are_413_and_change_nothing(
    wire: Wire, clean_database: str
) -> None:
    services = wire(
        sender=FakeProvider("fake"), sendgrid_webhook_public_key=PUBLIC_KEY, webhook_max_events=2
    )
    record_sent(services, "b@example.org", "sg-b")
    body = json.dumps(
        [sendgrid_event("sg-b", "b@example.org", "bounce", type="bounce")] * 3
    ).encode()

    with serving() as url:
        answer = requests.post(
            f"{url}/v1/events/sendgrid", data=body, headers=signed(body), timeout=5
        )

    assert answer.status_code == 413
    assert answer.json()["error_type"] == "payload_too_large"
    assert answer.json()["message"] == "3 events in one request; at most 2 (WEBHOOK_MAX_EVENTS)"
    assert state(clean_database) == {"b@example.org": ("sent", 0)}
    assert suppressions(clean_database) == {}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"event": "bounce"}, "the body is not a JSON array of events"),
        (["bounce"], "an event is not a JSON object"),
    ],
)
def test_a_signed_sendgrid_body_that_is_not_events_is_422(
    services: Container, base_url: str, clean_database: str, body: Any, problem: str
) -> None:
    record_sent(services, "b@example.org", "sg-b")
    raw = json.dumps(body).encode()

    answer = requests.post(
        f"{base_url}/v1/events/sendgrid", data=raw, headers=signed(raw), timeout=5
    )

    assert answer.status_code == 422
    assert answer.json()["error_type"] == "validation_error"
    assert answer.json()["message"] == "Not a webhook payload of the documented format"
    assert answer.json()["details"][0]["msg"] == problem
    assert state(clean_database) == {"b@example.org": ("sent", 0)}


def test_a_signed_mailgun_payload_without_event_data_is_422_and_its_token_stays_usable(
    services: Container, base_url: str, clean_database: str
) -> None:
    record_sent(services, "a@example.org", "mg-1")
    payload = mailgun_payload("mg-1", "a@example.org", "delivered")
    event_data = payload.pop("event-data")

    malformed = requests.post(f"{base_url}/v1/events/mailgun", json=payload, timeout=5)
    payload["event-data"] = event_data
    whole = requests.post(f"{base_url}/v1/events/mailgun", json=payload, timeout=5)

    assert malformed.status_code == 422
    assert malformed.json()["details"][0]["msg"] == "event-data is missing"
    assert whole.status_code == 200
    assert state(clean_database) == {"a@example.org": ("delivered", 1)}
