"""Nothing is lost: recipients recorded but never queued are queued again; abandoned ones are
reported failed; a send whose write the database could not take is recorded by a receipt."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.errors import DatabaseUnavailableError
from chalicelib.models.mail import DeliveryState, ProcessingMessage
from chalicelib.providers.base import SendResult
from chalicelib.repositories.delivery_rows import Delivery
from chalicelib.repositories.send_leases import SendLeaseRepository, Settlement
from chalicelib.services.delivery import DeliveryService, Outcome
from chalicelib.services.messages import receipt_body
from tests.integration.mail.conftest import (
    Wire,
    mail_headers,
    seed_request,
    three_recipients,
)
from tests.support.fake_providers import FakeProvider
from tests.support.http import call
from tests.support.queues import Queues, consume_until_empty
from tests.support.recording import lease, settle

QUEUE_DOWN = "http://127.0.0.1:9/000000000000/unreachable"


def record_without_queueing(wire: Wire, api: Client, key: str, body: dict[str, Any]) -> None:
    """The API records the recipients, then cannot queue them (every provider and the queue
    down): what a crash right after the insert leaves too."""
    wire(sender=FakeProvider("down").fail_unavailable(), mail_queue_url=QUEUE_DOWN)
    answer = call(api, "POST", "/v1/mail", headers=mail_headers(key), body=body)
    assert answer.status == 503, answer.json


def key_id(database: str) -> uuid.UUID:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT id FROM api_keys").fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def statuses(database: str) -> dict[str, str]:
    with psycopg.connect(database) as conn:
        return dict(conn.execute("SELECT email_recipient_id, status FROM deliveries").fetchall())


def undispatched(database: str) -> set[str]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT email_recipient_id FROM deliveries"
            " WHERE status = 'queued' AND dispatched_at IS NULL"
        ).fetchall()
    return {row[0] for row in rows}


def test_the_sweep_queues_recipients_whose_message_never_reached_the_queue(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    record_without_queueing(wire, api, api_key, seed_request(recipients=three_recipients()))
    assert queues.count(queues.processing) == 0
    assert undispatched(clean_database) == {"r-1", "r-2", "r-3"}
    provider = FakeProvider("fake")
    services = wire(sender=provider, redispatch_after_seconds=0.01)

    time.sleep(0.05)  # older than REDISPATCH_AFTER_SECONDS

    report = services.recovery.sweep()
    consume_until_empty(services, queues)
    again = services.recovery.sweep()

    assert report.redispatched == 3
    assert again.redispatched == 0
    assert sorted(m.to[0].email for m in provider.sent) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    assert statuses(clean_database) == {"r-1": "sent", "r-2": "sent", "r-3": "sent"}
    rendered = {m.to[0].email: m.html for m in provider.sent}
    assert "Hello &lt;b&gt;Bob &amp; Co&lt;/b&gt;" in rendered["bob@example.org"]


def test_a_replay_queues_them_again_too(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    body = seed_request(recipients=three_recipients())
    record_without_queueing(wire, api, api_key, body)
    provider = FakeProvider("fake")
    services = wire(sender=provider, redispatch_after_seconds=0.01)

    answer = call(api, "POST", "/v1/mail", body=body, headers=mail_headers(api_key))
    assert answer.status == 202
    assert queues.count(queues.processing) == 3
    consume_until_empty(services, queues)

    assert len(provider.sent) == 3
    assert statuses(clean_database) == {"r-1": "sent", "r-2": "sent", "r-3": "sent"}


def test_recipients_without_an_outcome_for_hours_are_reported_failed(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    services = wire(sender=FakeProvider("fake"))
    call(
        api,
        "POST",
        "/v1/mail",
        headers=mail_headers(api_key),
        body=seed_request(recipients=three_recipients()),
    )
    queues.drain_json(queues.processing)  # dead-lettered while the database was down
    with psycopg.connect(clean_database) as conn:
        conn.execute("UPDATE deliveries SET dispatched_at = now() - interval '7 hours'")

    report = services.recovery.sweep()

    assert report.abandoned == 3
    assert set(statuses(clean_database).values()) == {"failed"}
    results = queues.drain_json(queues.result)
    assert sorted(r["status"] for r in results) == ["failed"] * 3
    assert "dead-lettered" in results[0]["result"]["last_error"]


class DatabaseGoneAfterSend(SendLeaseRepository):
    """The database stops answering right after the provider accepted the message."""

    def settle_many(self, settlements: list[Settlement]) -> dict[uuid.UUID, Delivery]:
        raise DatabaseUnavailableError


def test_a_send_the_database_could_not_record_is_recorded_by_a_receipt_not_sent_again(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    record_without_queueing(wire, api, api_key, seed_request())
    provider = FakeProvider("fake")
    services = wire(sender=provider, send_lease_seconds=0.01)
    repo = services.deliveries
    delivery = repo.find(key_id(clean_database), "msg-123", "recipient-123")
    job = seed_queue_message(key_id(clean_database))
    flaky = DeliveryService(
        services.deliveries,
        DatabaseGoneAfterSend(services.database),
        provider,
        services.result_queue,
        services.processing_queue,
    )

    outcome = flaky.deliver(job)
    assert outcome.kind is Outcome.SENT
    assert repo.find(delivery.api_key_id, "msg-123", "recipient-123").status is DeliveryState.QUEUED

    queues.sqs.send_message(QueueUrl=queues.processing, MessageBody=job.model_dump_json())
    consume_until_empty(services, queues)  # the receipt, and SQS redelivering the email

    assert len(provider.sent) == 1
    assert statuses(clean_database) == {"recipient-123": "sent"}
    # Reports are at least once: the receipt and the redelivery may both publish "sent".
    reports = queues.drain_json(queues.result)
    assert reports
    assert {r["status"] for r in reports} == {"sent"}


def test_only_the_lease_holder_records_the_outcome(
    wire: Wire, api: Client, api_key: str, clean_database: str
) -> None:
    record_without_queueing(wire, api, api_key, seed_request())
    services = wire(sender=FakeProvider("fake"))
    key = key_id(clean_database)
    row = services.deliveries.find(key, "msg-123", "recipient-123")
    repo = services.leases
    first = lease(repo, (key, "msg-123", "recipient-123"))
    assert first is not None
    with psycopg.connect(clean_database) as conn:  # the first sender's lease runs out
        conn.execute("UPDATE deliveries SET lease_until = now() - interval '1 second'")
    second = lease(repo, (key, "msg-123", "recipient-123"))
    assert second is not None

    assert settle(repo, first, DeliveryState.QUEUED, error="late") is None
    assert settle(repo, first, DeliveryState.SENT, provider="fake", message_id="late-1") is None
    assert settle(repo, second, DeliveryState.SENT, provider="fake", message_id="ok-1")
    assert services.deliveries.get(row.id).message_id == "ok-1"  # type: ignore[union-attr]


@pytest.mark.parametrize("position", [0, 2])
def test_every_recipients_queue_message_is_sized_before_anything_is_recorded(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str, position: int
) -> None:
    # The largest of the ordinary recipients' messages, as the queue received them.
    wire(sender=FakeProvider("fake"))
    ordinary = seed_request(email_id="ordinary", recipients=three_recipients())
    assert call(api, "POST", "/v1/mail", headers=mail_headers(api_key), body=ordinary).status == 202
    largest = max(len(r.body.encode()) for r in queues.receive(queues.processing))
    queues.sqs.purge_queue(QueueUrl=queues.processing)
    with psycopg.connect(clean_database) as conn:
        conn.execute("TRUNCATE deliveries, emails CASCADE")
    # One recipient 800 bytes larger (400 two-byte characters) than that: over a limit 250
    # bytes above the largest ordinary message, the others under it.
    recipients = three_recipients()
    recipients[position] |= {"name": "Ö" * 200, "company": "Ä" * 200}
    body = seed_request(recipients=recipients)
    wire(sender=FakeProvider("fake"), queue_max_message_bytes=largest + 250)

    answer = call(api, "POST", "/v1/mail", headers=mail_headers(api_key), body=body)

    assert answer.status == 413
    assert answer.json["error_type"] == "payload_too_large"
    assert statuses(clean_database) == {}
    assert queues.count(queues.processing) == 0


def seed_queue_message(key: uuid.UUID) -> ProcessingMessage:
    """The seed's request for its one recipient, as a processing-queue message."""
    return ProcessingMessage(
        email_id="msg-123",
        email_recipient_id="recipient-123",
        client_env_id="env-123",
        sender_email="support@example.com",
        sender_name="Support Team",
        sender_organisation_name="Acme Corp",
        subject="Test Email",
        html_template="<html><body><h1>Hello {{name}}</h1></body></html>",
        recipient_name="John Doe",
        recipient_email="john@example.com",
        recipient_company="Acme Corp",
        projectId="project-456",
        closureId="closure-789",
        api_key_id=str(key),
    )


class DatabaseStillDown(SendLeaseRepository):
    def record_sent(self, *args: object, **kwargs: object) -> Delivery | None:
        raise DatabaseUnavailableError


def test_a_receipt_the_database_cannot_take_yet_waits_on_the_queue_without_dead_lettering(
    wire: Wire, queues: Queues
) -> None:
    services = wire(sender=FakeProvider("fake"))
    waiting = DeliveryService(
        services.deliveries,
        DatabaseStillDown(services.database),
        FakeProvider("fake"),
        services.result_queue,
        services.processing_queue,
    )
    delivery_id = uuid.uuid4()
    body = receipt_body(delivery_id, SendResult("fake", "m"))

    waiting.apply_receipt(body, delivery_id, "fake", "m")

    delayed = queues.sqs.get_queue_attributes(
        QueueUrl=queues.processing, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]["ApproximateNumberOfMessagesDelayed"]
    assert delayed == "1"


def test_a_replay_requeues_what_was_recorded_not_what_was_replayed(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    record_without_queueing(wire, api, api_key, seed_request())
    provider = FakeProvider("fake")
    services = wire(sender=provider, redispatch_after_seconds=0.01)
    time.sleep(0.05)
    changed = seed_request(
        recipients=[
            {"name": "Mallory", "mail": "mallory@example.org", "emailRecipientId": "recipient-123"}
        ]
    )

    call(api, "POST", "/v1/mail", body=changed, headers=mail_headers(api_key))
    consume_until_empty(services, queues)

    assert [m.to[0].email for m in provider.sent] == ["john@example.com"]


def test_content_stored_by_an_earlier_release_still_matches_a_faithful_replay(
    wire: Wire, api: Client, api_key: str, clean_database: str
) -> None:
    wire(sender=FakeProvider("fake"))
    first = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))
    with psycopg.connect(clean_database) as conn:  # a field this release added, absent before
        conn.execute("UPDATE emails SET content = content - 'list_unsubscribe'")

    again = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert first.status == again.status == 200
