"""Bulk fan-out over SQS (moto), the consumer's per-record semantics, and the result queue."""

from __future__ import annotations

import json
import logging
import time

import psycopg
import pytest
from chalice.test import Client

from chalicelib.controllers.queue_consumer import handle_processing_batch
from chalicelib.errors import BatchIncompleteError
from chalicelib.models.mail import ProcessingMessage
from chalicelib.services.messages import new_delivery
from tests.integration.mail.conftest import (
    SENDER,
    Wire,
    mail_headers,
    seed_request,
    three_recipients,
)
from tests.support.fake_providers import FakeProvider
from tests.support.http import Answer, call
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues, consume_once, consume_until_empty
from tests.support.senders import RecipientOutage

SEED_MESSAGE_FIELDS = {
    "email_id",
    "email_recipient_id",
    "client_env_id",
    "sender_email",
    "sender_name",
    "sender_organisation_name",
    "subject",
    "html_template",
    "recipient_name",
    "recipient_email",
    "recipient_company",
    "queued_at",
}


def post_bulk(api: Client, key: str, **overrides: object) -> Answer:
    """POST the seed's email to the three recipients."""
    return call(
        api,
        "POST",
        "/v1/mail",
        headers=mail_headers(key),
        body=seed_request(recipients=three_recipients(), **overrides),
    )


def bulk(api: Client, key: str, **overrides: object) -> dict[str, object]:
    """post_bulk, expecting 202; its data."""
    answer = post_bulk(api, key, **overrides)
    assert answer.status == 202, answer.json
    data: dict[str, object] = answer.json["data"]
    return data


def test_three_recipients_are_three_messages_then_three_sends_and_three_results(
    wire: Wire, api: Client, api_key: str, moto: MotoServer, queues: Queues
) -> None:
    services = wire()

    data = bulk(api, api_key)

    assert data["email_id"] == "msg-123"
    assert data["count"] == 3
    recipients = data["recipients"]
    assert isinstance(recipients, list)
    assert [r["email_recipient_id"] for r in recipients] == ["r-1", "r-2", "r-3"]
    assert all(r["status"] == "queued" and r["queued_at"] for r in recipients)
    records = queues.receive(queues.processing)
    assert len(records) == 3
    bodies = [json.loads(r.body) for r in records]
    assert all(set(b) >= SEED_MESSAGE_FIELDS for b in bodies)
    assert sorted(b["recipient_email"] for b in bodies) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    assert moto.ses_sent_messages() == []

    for record in records:  # make them visible again for the consumer
        queues.sqs.change_message_visibility(
            QueueUrl=queues.processing, ReceiptHandle=record.receipt_handle, VisibilityTimeout=0
        )
    consume_until_empty(services, queues)

    sent = moto.ses_sent_messages()
    assert len(sent) == 3
    html = {m.destinations["ToAddresses"][0]: str(m.body) for m in sent}
    assert "Hello Alice" in html["Alice <alice@example.org>"]
    bob_html = next(body for to, body in html.items() if "bob@example.org" in to)
    assert "Hello &lt;b&gt;Bob &amp; Co&lt;/b&gt;" in bob_html
    assert "<b>Bob" not in bob_html
    results = queues.drain_json(queues.result)
    assert sorted((r["email_recipient_id"], r["status"]) for r in results) == [
        ("r-1", "sent"),
        ("r-2", "sent"),
        ("r-3", "sent"),
    ]
    assert all(r["result"]["message_id"] and r["result"]["sent_at"] for r in results)
    assert all(r["projectId"] == "project-456" for r in results)


def test_posting_the_same_bulk_email_again_queues_nothing_new(
    wire: Wire, api: Client, api_key: str, queues: Queues
) -> None:
    services = wire(sender=FakeProvider("fake"))
    bulk(api, api_key)
    consume_until_empty(services, queues)

    again = post_bulk(api, api_key)

    assert queues.count(queues.processing) == 0
    assert again.status == 202
    assert again.json["message"] == "Emails already accepted: each recipient's current status"
    assert [r["status"] for r in again.json["data"]["recipients"]] == ["sent", "sent", "sent"]


def test_replaying_the_same_sqs_batch_sends_nothing_twice(
    wire: Wire, api: Client, api_key: str, queues: Queues
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider)
    bulk(api, api_key)
    records = queues.receive(queues.processing)

    first = handle_processing_batch(records, services)
    second = handle_processing_batch(records, services)  # SQS delivered the batch again

    assert first == second == {"batchItemFailures": []}
    assert len(provider.sent) == 3
    assert len(queues.drain_json(queues.result)) == 3


def test_a_transient_failure_retries_that_record_only(
    wire: Wire, api: Client, api_key: str, queues: Queues
) -> None:
    provider = FakeProvider("fake")
    outage = RecipientOutage(provider, failing={"bob@example.org"})
    services = wire(sender=outage)
    bulk(api, api_key)

    consume_once(services, queues)

    assert sorted(m.to[0].email for m in provider.sent) == [
        "alice@example.org",
        "carol@example.org",
    ]
    assert queues.count(queues.processing) == 1  # only Bob's message is left
    outage.recover()
    consume_until_empty(services, queues)

    assert sorted(m.to[0].email for m in provider.sent) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    assert outage.refused == ["bob@example.org"]


def test_poison_messages_fail_without_blocking_the_batch(
    wire: Wire, queues: Queues, clean_database: str
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider)
    good = {
        "email_id": "ext-1",
        "email_recipient_id": "ok",
        "sender_email": SENDER,
        "subject": "Hi",
        "html_template": "<p>Hi {{name}}</p>",
        "recipient_name": "Dee",
        "recipient_email": "dee@example.org",
    }
    bad_address = {**good, "email_recipient_id": "bad", "recipient_email": "not-an-address"}
    bad_template = {**good, "email_recipient_id": "tpl", "html_template": "{{ nope }}"}
    nul = {**good, "email_recipient_id": "nul", "html_template": "<p>\u0000</p>"}
    for body in (
        json.dumps(nul),
        "this is not json",
        json.dumps([1, 2]),
        json.dumps(bad_address),
        json.dumps(bad_template),
        json.dumps(good),
    ):
        queues.sqs.send_message(QueueUrl=queues.processing, MessageBody=body)

    consume_until_empty(services, queues)

    assert [m.to[0].email for m in provider.sent] == ["dee@example.org"]
    assert queues.count(queues.dead_letter) == 0
    results = {r["email_recipient_id"]: r for r in queues.drain_json(queues.result)}
    assert results["ok"]["status"] == "sent"
    assert results["bad"]["status"] == "failed"
    assert "malformed" in results["bad"]["result"]["last_error"]
    assert results["tpl"]["status"] == "failed"
    assert "undefined" in results["tpl"]["result"]["last_error"]
    assert results["nul"]["status"] == "failed"
    assert "NUL" in results["nul"]["result"]["last_error"]
    with psycopg.connect(clean_database) as conn:
        rows = dict(conn.execute("SELECT email_recipient_id, status FROM deliveries").fetchall())
    assert rows == {"ok": "sent", "bad": "failed", "tpl": "failed", "nul": "failed"}
    with psycopg.connect(clean_database) as conn:
        bad = conn.execute(
            "SELECT status_detail FROM deliveries WHERE email_recipient_id = 'bad'"
        ).fetchone()
    assert bad == ("malformed_message",)
    with psycopg.connect(clean_database) as conn:
        # Rows made for messages found on the queue count as dispatched: the sweep, which
        # queues rows that never reached it, leaves them alone.
        undispatched = conn.execute("SELECT count(*) FROM deliveries WHERE dispatched_at IS NULL")
        assert undispatched.fetchone() == (0,)


def test_after_the_last_receive_it_is_failed_and_dead_lettered(
    wire: Wire, api: Client, api_key: str, queues: Queues
) -> None:
    services = wire(sender=FakeProvider("fake").fail_unavailable())
    call(
        api,
        "POST",
        "/v1/mail",
        headers=mail_headers(api_key),
        body=seed_request(recipients=three_recipients()[:2]),
    )

    for _ in range(3):  # max receives is 3
        consume_once(services, queues)
    consume_once(services, queues)  # SQS moves them to the dead-letter queue here

    assert queues.count(queues.processing) == 0
    assert queues.count(queues.dead_letter) == 2
    results = queues.drain_json(queues.result)
    assert sorted((r["email_recipient_id"], r["status"]) for r in results) == [
        ("r-1", "failed"),
        ("r-2", "failed"),
    ]
    assert all("gave up after 3 attempts" in r["result"]["last_error"] for r in results)


def test_the_batch_raises_so_lambda_keeps_only_the_failed_records(
    wire: Wire, api: Client, api_key: str, queues: Queues
) -> None:
    outage = RecipientOutage(FakeProvider("fake"), failing={"carol@example.org"})
    services = wire(sender=outage)
    bulk(api, api_key)
    records = queues.receive(queues.processing)

    try:
        handle_processing_batch(records, services)
    except BatchIncompleteError as err:
        message = str(err)
    else:
        raise AssertionError("the handler should raise for the failed record")

    assert "1 of 3 records will be retried" in message
    left = queues.receive(queues.processing)
    assert [json.loads(r.body)["recipient_email"] for r in left] == ["carol@example.org"]


def test_a_result_queue_outage_keeps_the_report_and_publishes_it_later(
    wire: Wire,
    api: Client,
    api_key: str,
    queues: Queues,
    caplog: pytest.LogCaptureFixture,
    clean_database: str,
) -> None:
    wire(
        sender=FakeProvider("fake"),
        mail_result_queue_url="http://127.0.0.1:9/000000000000/unreachable",
    )
    caplog.set_level(logging.WARNING, logger="mmms.delivery")
    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))
    assert answer.status == 200
    assert queues.drain_json(queues.result) == []
    with psycopg.connect(clean_database) as conn:
        [(row_id,)] = conn.execute("SELECT id FROM deliveries").fetchall()
    kept = [r for r in caplog.records if r.name == "mmms.delivery"]
    assert [(r.getMessage(), getattr(r, "delivery_ids", None)) for r in kept] == [
        ("result queue unreachable; reports kept pending", [str(row_id)])
    ]

    services = wire(sender=FakeProvider("fake"))
    published = services.delivery.republish_pending()

    assert published == 1
    results = queues.drain_json(queues.result)
    assert [r["status"] for r in results] == ["sent"]
    assert services.delivery.republish_pending() == 0


def test_pending_reports_are_republished_a_hundred_at_a_time(
    wire: Wire, queues: Queues, clean_database: str
) -> None:
    services = wire(sender=FakeProvider("fake"))
    jobs = [
        ProcessingMessage(
            email_id="old-news",
            email_recipient_id=f"r-{n}",
            sender_email=SENDER,
            subject="s",
            html_template="<p>hi</p>",
            recipient_email=f"r{n}@example.org",
        )
        for n in range(101)
    ]
    services.deliveries.insert_new(None, [new_delivery(job) for job in jobs])
    with psycopg.connect(clean_database) as conn:
        conn.execute("UPDATE deliveries SET result_pending = true")

    first = services.delivery.republish_pending()
    first_reports = queues.drain_json(queues.result)
    second = services.delivery.republish_pending()

    assert (first, len(first_reports), second) == (100, 100, 1)  # one sweep's worth, then the rest


def test_a_bulk_request_the_queue_cannot_take_is_503_and_is_queued_once_it_is_back(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    wire(sender=FakeProvider("fake"), mail_queue_url="http://127.0.0.1:9/000000000000/down")

    answer = post_bulk(api, api_key)

    assert answer.status == 503
    assert answer.json["error_type"] == "service_unavailable"
    assert "queued automatically" in answer.json["message"]
    with psycopg.connect(clean_database) as conn:
        rows = conn.execute("SELECT status, dispatched_at FROM deliveries").fetchall()
    assert rows == [("queued", None)] * 3  # recorded, not on any queue: not sent, not lost

    provider = FakeProvider("fake")
    services = wire(sender=provider, redispatch_after_seconds=0.01)  # the queue is back
    time.sleep(0.05)
    assert services.recovery.sweep().redispatched == 3
    consume_until_empty(services, queues)
    again = post_bulk(api, api_key)

    assert len(provider.sent) == 3
    assert [r["status"] for r in again.json["data"]["recipients"]] == ["sent"] * 3
