"""The Lambda entry points of ``app.py``, called with the events Lambda hands them.

The SQS events are built from messages really received from the queue (moto, over HTTP):
their receipt handles work, and ``ApproximateReceiveCount`` is the queue's own count, which
decides when the consumer gives up. The record layout is Lambda's ("Using Lambda with Amazon
SQS": messageId, receiptHandle, body, attributes, messageAttributes, md5OfBody, eventSource,
eventSourceARN, awsRegion); the scheduled event is EventBridge's "Scheduled Event".
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.errors import BatchIncompleteError, ProviderUnavailableError
from chalicelib.models.mail import ProcessingMessage
from chalicelib.providers.base import OutgoingMessage, SendResult
from chalicelib.repositories.rate_limits import RateLimitRepository
from tests.integration.mail.conftest import SENDER, Wire, mail_headers, seed_request
from tests.support import ses_events
from tests.support.fake_providers import FakeProvider
from tests.support.http import call
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues
from tests.support.recording import record_sent
from tests.support.ses_events import EventsQueue, create_events_queue

REGION_ARN = "arn:aws:sqs:us-east-1:123456789012"


class FakeContext:
    """What the handlers may read of Lambda's context object."""

    function_name = "mmms-dev"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def sqs_event(queues_sqs: Any, url: str, *, receives: int = 1) -> dict[str, Any]:
    """Lambda's event for the messages on ``url``, as received the ``receives``-th time."""
    for attempt in range(receives):
        answer = queues_sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=0 if attempt < receives - 1 else 30,
        )
    messages = answer.get("Messages", [])
    name = url.rsplit("/", 1)[1]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],  # ApproximateReceiveCount, SentTimestamp, ...
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"{REGION_ARN}:{name}",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/mmms-dev-sweep_deliveries"],
        "detail": {},
    }


def queue_message(email_id: str, recipient: str) -> str:
    return ProcessingMessage(
        email_id=email_id,
        email_recipient_id=recipient.split("@", maxsplit=1)[0],
        sender_email=SENDER,
        subject="Hello {{name}}",
        html_template="<p>Hello {{name}}</p>",
        recipient_name=recipient.split("@", maxsplit=1)[0].title(),
        recipient_email=recipient,
    ).model_dump_json()


def result_reports(queues: Queues) -> list[tuple[str, str]]:
    return sorted((r["email_recipient_id"], r["status"]) for r in queues.drain_json(queues.result))


@pytest.fixture
def lambda_app(wire: Wire) -> Any:
    from mmms_local import gateway

    gateway.install()
    import app

    return app


def test_the_processing_queue_handler_sends_a_batch_and_lambda_deletes_it(
    wire: Wire, lambda_app: Any, queues: Queues
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider)
    for name in ("ann", "ben", "cy"):
        queues.sqs.send_message(
            QueueUrl=queues.processing, MessageBody=queue_message("batch-1", f"{name}@example.org")
        )
    event = sqs_event(queues.sqs, queues.processing)

    answer = lambda_app.consume_processing_queue(event, FakeContext())

    assert answer == {"batchItemFailures": []}
    assert sorted(m.to[0].email for m in provider.sent) == [
        "ann@example.org",
        "ben@example.org",
        "cy@example.org",
    ]
    assert result_reports(queues) == [("ann", "sent"), ("ben", "sent"), ("cy", "sent")]


class DownFor(FakeProvider):
    """Unavailable for one address, up for every other."""

    def __init__(self, address: str) -> None:
        super().__init__("fake")
        self.address = address

    def send(self, message: OutgoingMessage) -> SendResult:
        if message.to[0].email == self.address:
            raise ProviderUnavailableError(self.name, f"down for {self.address}")
        return super().send(message)


def test_a_failed_record_is_left_on_the_queue_and_its_batch_mates_are_deleted(
    wire: Wire, lambda_app: Any, queues: Queues
) -> None:
    provider = DownFor("later@example.org")
    wire(sender=provider)
    for name in ("ok", "later"):
        queues.sqs.send_message(
            QueueUrl=queues.processing, MessageBody=queue_message("b", f"{name}@example.org")
        )
    event = sqs_event(queues.sqs, queues.processing)
    ids = {json.loads(r["body"])["recipient_email"]: r["messageId"] for r in event["Records"]}

    with pytest.raises(BatchIncompleteError) as raised:
        lambda_app.consume_processing_queue(event, FakeContext())

    assert str(raised.value) == f"1 of 2 records will be retried: ['{ids['later@example.org']}']"
    assert [m.to[0].email for m in provider.sent] == ["ok@example.org"]
    assert queues.count(queues.processing) == 1  # ok@ was deleted (visible or not)
    left = sqs_event(queues.sqs, queues.processing)["Records"]
    assert [r["messageId"] for r in left] == [ids["later@example.org"]]  # visible again now
    assert left[0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_a_record_at_its_last_receive_is_given_up_failed_and_reported(
    wire: Wire, lambda_app: Any, queues: Queues, clean_database: str
) -> None:
    wire(sender=FakeProvider("down").fail_unavailable())  # MAIL_QUEUE_MAX_RECEIVES is 3
    queues.sqs.send_message(
        QueueUrl=queues.processing, MessageBody=queue_message("last", "dana@example.org")
    )
    event = sqs_event(queues.sqs, queues.processing, receives=3)
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "3"

    with pytest.raises(BatchIncompleteError):  # the message itself is left to the queue ...
        lambda_app.consume_processing_queue(event, FakeContext())

    with psycopg.connect(clean_database) as conn:
        assert conn.execute("SELECT status, status_detail FROM deliveries").fetchall() == [
            ("failed", "retries_exhausted")
        ]
        [(last_error,)] = conn.execute("SELECT last_error FROM deliveries").fetchall()
    # The give-up names the attempts and the last reason the providers gave.
    assert last_error == "gave up after 3 attempts: down: scripted outage"
    assert result_reports(queues) == [("dana", "failed")]
    # ... which moves it to the dead-letter queue at its next receive (maxReceiveCount 3).
    assert sqs_event(queues.sqs, queues.processing)["Records"] == []
    assert queues.count(queues.dead_letter) == 1


def test_the_same_record_received_once_is_retried_not_failed(
    wire: Wire, lambda_app: Any, queues: Queues, clean_database: str
) -> None:
    wire(sender=FakeProvider("down").fail_unavailable())
    queues.sqs.send_message(
        QueueUrl=queues.processing, MessageBody=queue_message("first", "eve@example.org")
    )
    event = sqs_event(queues.sqs, queues.processing)

    with pytest.raises(BatchIncompleteError):
        lambda_app.consume_processing_queue(event, FakeContext())

    with psycopg.connect(clean_database) as conn:
        assert conn.execute("SELECT status FROM deliveries").fetchall() == [("queued",)]
    assert queues.drain_json(queues.result) == []


def test_the_events_queue_handler_applies_ses_events_from_sns(
    wire: Wire, lambda_app: Any, moto: MotoServer, clean_database: str
) -> None:
    events: EventsQueue = create_events_queue(moto)
    services = wire(sender=FakeProvider("fake"), mail_events_queue_url=events.url)
    record_sent(services, "fay@example.org", "ses-1")
    events.publish_via_sns(ses_events.bounce("ses-1", "fay@example.org"))
    event = sqs_event(events.sqs, events.url)

    answer = lambda_app.consume_events_queue(event, FakeContext())

    assert answer == {"batchItemFailures": []}
    with psycopg.connect(clean_database) as conn:
        assert conn.execute("SELECT status FROM deliveries").fetchall() == [("bounced",)]
        assert conn.execute("SELECT address, reason FROM suppressions").fetchall() == [
            ("fay@example.org", "bounce")
        ]


def test_the_scheduled_sweep_requeues_prunes_and_republishes(
    wire: Wire, lambda_app: Any, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    # A recipient recorded but never queued (providers and queue down) ...
    wire(
        sender=FakeProvider("down").fail_unavailable(),
        mail_queue_url="http://127.0.0.1:9/000000000000/unreachable",
    )
    assert (
        call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key)).status
        == 503
    )
    services = wire(sender=FakeProvider("fake"))
    with psycopg.connect(clean_database) as conn:  # older than REDISPATCH_AFTER_SECONDS
        conn.execute("UPDATE deliveries SET updated_at = now() - interval '1 hour'")
    # ... a rate-limit window and a webhook token from long ago, and recent ones.
    limits = RateLimitRepository(services.database)
    key = uuid.uuid4()
    limits.hit(key, datetime.now(UTC) - timedelta(hours=1))
    limits.hit(key, datetime.now(UTC))
    services.webhook_tokens.remember("mailgun", "old-token")
    services.webhook_tokens.remember("mailgun", "new-token")
    with psycopg.connect(clean_database) as conn:
        conn.execute(
            "UPDATE webhook_tokens SET seen_at = now() - interval '1 hour'"
            " WHERE token = 'old-token'"
        )

    answer = lambda_app.sweep_deliveries(scheduled_event(), FakeContext())

    assert answer is None
    requeued = queues.drain_json(queues.processing)
    assert [(m["email_id"], m["email_recipient_id"]) for m in requeued] == [
        ("msg-123", "recipient-123")
    ]
    with psycopg.connect(clean_database) as conn:
        windows = conn.execute(
            "SELECT window_start > now() - interval '2 minutes' FROM rate_limit_windows"
            " WHERE api_key_id = %s",
            (key,),
        ).fetchall()
        assert windows == [(True,)]  # the hour-old window is gone, this minute's kept
        assert conn.execute("SELECT token FROM webhook_tokens").fetchall() == [("new-token",)]
