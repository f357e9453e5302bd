"""POST /v1/mail with one recipient: sent at once through SES (moto), reported, idempotent."""

from __future__ import annotations

import re
import time
import uuid

import psycopg
from chalice.test import Client

from tests.integration.mail.conftest import Wire, mail_headers, seed_request
from tests.support.fake_providers import FakeProvider
from tests.support.http import call
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues, consume_until_empty
from tests.support.recording import lease

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
STATUS_FIELDS = {
    "email_id",
    "email_recipient_id",
    "recipient",
    "status",
    "message_id",
    "status_detail",
    "last_error",
    "queued_at",
    "sent_at",
    "provider",
}


def test_the_seed_example_gives_the_seed_response(
    wire: Wire, api: Client, api_key: str, moto: MotoServer, queues: Queues
) -> None:
    wire()

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 200, answer.json
    assert answer.json["status"] == 200
    assert answer.json["message"] == "Email sent successfully"
    data = answer.json["data"]
    assert set(data) == {"message_id", "ses_response", "status"}
    assert data["ses_response"] == {"MessageId": data["message_id"]}
    status = data["status"]
    assert set(status) == STATUS_FIELDS
    assert status["email_id"] == "msg-123"
    assert status["email_recipient_id"] == "recipient-123"
    assert status["recipient"] == "john@example.com"
    assert status["status"] == "sent"
    assert status["message_id"] == data["message_id"]
    assert status["status_detail"] is None
    assert status["last_error"] is None
    assert TIMESTAMP.match(status["sent_at"])
    assert status["provider"] == "ses"

    sent = moto.ses_sent_messages()
    assert len(sent) == 1
    assert "Hello John Doe" in str(sent[0].body)
    results = queues.drain_json(queues.result)
    assert len(results) == 1
    assert results[0]["success"] is True
    assert results[0]["status"] == "sent"
    assert results[0]["result"]["message_id"] == data["message_id"]
    assert results[0]["projectId"] == "project-456"
    assert results[0]["closureId"] == "closure-789"
    assert results[0]["client_env_id"] == "env-123"


def test_posting_the_same_email_again_sends_nothing(
    wire: Wire, api: Client, api_key: str, moto: MotoServer, queues: Queues
) -> None:
    wire()
    first = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    again = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert again.status == 200
    assert again.json["data"]["message_id"] == first.json["data"]["message_id"]
    assert len(moto.ses_sent_messages()) == 1
    assert len(queues.drain_json(queues.result)) == 1


def test_a_permanent_rejection_is_400_and_reported_failed(
    wire: Wire, api: Client, api_key: str, queues: Queues
) -> None:
    provider = FakeProvider("fake").fail_rejected()
    wire(sender=provider)

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 400
    assert answer.json["error_type"] == "business_error"
    assert answer.json["details"]["status"] == "failed"
    results = queues.drain_json(queues.result)
    assert [r["status"] for r in results] == ["failed"]
    assert results[0]["success"] is False
    assert "scripted rejection" in results[0]["result"]["last_error"]
    assert provider.attempts == 1


def test_every_provider_down_queues_it_and_it_is_sent_once_later(
    wire: Wire, api: Client, api_key: str, queues: Queues
) -> None:
    provider = FakeProvider("fake").fail_unavailable()
    services = wire(sender=provider)

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 202
    assert answer.json["data"]["status"]["status"] == "queued"
    assert answer.json["data"]["message_id"] is None
    assert queues.count(queues.processing) == 1

    provider.recover()
    consume_until_empty(services, queues)
    again = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert len(provider.sent) == 1
    assert again.status == 200
    assert again.json["data"]["status"]["status"] == "sent"


def test_provider_and_queue_both_down_is_503_and_sent_later_exactly_once(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    wire(
        sender=FakeProvider("fake").fail_unavailable(),
        mail_queue_url="http://127.0.0.1:9/000000000000/unreachable",
    )

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 503
    with psycopg.connect(clean_database) as conn:
        assert conn.execute("SELECT status, dispatched_at FROM deliveries").fetchall() == [
            ("queued", None)
        ]
    provider = FakeProvider("fake")
    services = wire(sender=provider, redispatch_after_seconds=0.01)
    time.sleep(0.05)
    services.recovery.sweep()
    consume_until_empty(services, queues)
    assert len(provider.sent) == 1


def test_a_send_that_died_halfway_is_queued_again_by_the_sweep(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    # The API recorded it (its providers and the queue were down), then a sender took the
    # send lease and its Lambda was killed.
    wire(
        sender=FakeProvider("down").fail_unavailable(),
        mail_queue_url="http://127.0.0.1:9/000000000000/unreachable",
    )
    assert (
        call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key)).status
        == 503
    )
    provider = FakeProvider("fake")
    services = wire(sender=provider, redispatch_after_seconds=0.01)
    with psycopg.connect(clean_database) as conn:
        row = conn.execute("SELECT api_key_id FROM deliveries").fetchone()
    assert row is not None
    key = (uuid.UUID(str(row[0])), "msg-123", "recipient-123")
    assert lease(services.leases, key, seconds=0.01) is not None
    time.sleep(0.05)

    assert services.recovery.sweep().redispatched == 1
    consume_until_empty(services, queues)

    assert len(provider.sent) == 1
    assert services.deliveries.find(*key).status.value == "sent"


def test_reusing_an_email_id_for_a_different_email_is_400(
    wire: Wire, api: Client, api_key: str
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider)
    first = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))
    other = seed_request(
        subject="Another subject",
        recipients=[
            {"name": "Jane", "mail": "jane@example.com", "emailRecipientId": "recipient-456"}
        ],
    )

    answer = call(api, "POST", "/v1/mail", body=other, headers=mail_headers(api_key))

    assert first.status == 200
    assert answer.status == 400
    assert answer.json["error_type"] == "business_error"
    assert "already used for a different email" in answer.json["message"]
    assert len(provider.sent) == 1


def test_mail_needs_a_key_and_an_allowed_origin(wire: Wire, api: Client, api_key: str) -> None:
    wire()
    no_key = call(
        api, "POST", "/v1/mail", body=seed_request(), headers={"Origin": "https://app.example.com"}
    )
    wrong_origin = call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(),
        headers={**mail_headers(api_key), "Origin": "https://evil.example"},
    )

    assert no_key.status == 401
    assert wrong_origin.status == 401
