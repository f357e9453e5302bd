"""Database and queue outages in the consumer and delivery paths, with PostgreSQL really gone.

The app talks to PostgreSQL through a proxy the test cuts (``tests/support/db_outage.py``):
its connections drop and new ones are refused, as when the server goes away. "Once it is
back" is a new container on the restored proxy, as a new Lambda instance would be (a warm
one's broken pooled connections fail one statement each, which is a retry like any other).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from chalicelib.controllers.queue_consumer import handle_events_batch, handle_processing_batch
from chalicelib.errors import BatchIncompleteError
from chalicelib.models.mail import DeliveryState, ProcessingMessage
from chalicelib.providers.base import OutgoingMessage, SendResult
from chalicelib.queues.base import QueueRecord
from chalicelib.services.delivery import Outcome
from chalicelib.services.messages import receipt_body
from tests.integration.mail.conftest import SENDER, Wire
from tests.support import ses_events
from tests.support.db_outage import PostgresProxy
from tests.support.fake_providers import FakeProvider
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues, consume_once, consume_until_empty
from tests.support.recording import record_sent
from tests.support.ses_events import consume_events, create_events_queue

QUEUE_DOWN = "http://127.0.0.1:9/000000000000/unreachable"


@pytest.fixture
def proxy(clean_database: str) -> Iterator[PostgresProxy]:
    with PostgresProxy(clean_database) as running:
        yield running


def through(proxy: PostgresProxy, **settings: Any) -> dict[str, Any]:
    return {"database_url": proxy.conninfo, "db_connect_timeout_seconds": 0.5, **settings}


def job(name: str, email_id: str = "news-1") -> ProcessingMessage:
    return ProcessingMessage(
        email_id=email_id,
        email_recipient_id=name,
        sender_email=SENDER,
        subject="News for {{name}}",
        html_template="<p>Hello {{name}}</p>",
        recipient_name=name.title(),
        recipient_email=f"{name}@example.org",
    )


def put(queues: Queues, *names: str) -> None:
    for name in names:
        queues.sqs.send_message(QueueUrl=queues.processing, MessageBody=job(name).model_dump_json())


def statuses(database: str) -> dict[str, str]:
    with psycopg.connect(database) as conn:
        return dict(conn.execute("SELECT email_recipient_id, status FROM deliveries").fetchall())


def delayed(queues: Queues) -> tuple[int, int]:
    """(visible, delayed) messages on the processing queue."""
    attributes = queues.sqs.get_queue_attributes(
        QueueUrl=queues.processing,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesDelayed"]),
    )


class CutsTheDatabase(FakeProvider):
    """Accepts each message, and the database goes away right after."""

    def __init__(self, proxy: PostgresProxy) -> None:
        super().__init__("fake")
        self.proxy = proxy

    def send(self, message: OutgoingMessage) -> SendResult:
        result = super().send(message)
        self.proxy.cut()
        return result


def test_a_batch_meeting_the_database_down_is_retried_whole_and_sent_once_it_is_back(
    wire: Wire, queues: Queues, proxy: PostgresProxy, clean_database: str
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider, **through(proxy))
    put(queues, "ann", "ben", "cy")
    proxy.cut()
    records = queues.receive(queues.processing)

    with pytest.raises(BatchIncompleteError) as raised:
        handle_processing_batch(records, services)  # the republish after it fails too

    assert str(raised.value).startswith("3 of 3 records will be retried")
    assert provider.sent == []
    proxy.restore()
    services = wire(sender=provider, **through(proxy))
    consume_until_empty(services, queues)
    assert sorted(m.to[0].email for m in provider.sent) == [
        "ann@example.org",
        "ben@example.org",
        "cy@example.org",
    ]
    assert statuses(clean_database) == {"ann": "sent", "ben": "sent", "cy": "sent"}


def test_sends_the_database_could_not_record_travel_as_receipts_and_are_not_sent_again(
    wire: Wire, queues: Queues, proxy: PostgresProxy, clean_database: str
) -> None:
    provider = CutsTheDatabase(proxy)
    services = wire(sender=provider, **through(proxy))
    put(queues, "ann", "ben")

    consume_once(services, queues)  # both sent, then the database is gone: acknowledged

    assert len(provider.sent) == 2
    assert statuses(clean_database) == {"ann": "queued", "ben": "queued"}
    receipts = queues.drain_json(queues.processing)
    assert sorted(r["mmms_receipt"]["message_id"] for r in receipts) == ["fake-1", "fake-2"]
    proxy.restore()
    for receipt in receipts:  # back on the queue for the consumer, the database back too
        queues.sqs.send_message(QueueUrl=queues.processing, MessageBody=json.dumps(receipt))
    services = wire(sender=provider, **through(proxy))
    consume_until_empty(services, queues)
    put(queues, "ann", "ben")  # SQS delivering the emails again
    consume_until_empty(services, queues)

    assert len(provider.sent) == 2  # not sent again
    assert statuses(clean_database) == {"ann": "sent", "ben": "sent"}
    with psycopg.connect(clean_database) as conn:
        recorded = conn.execute("SELECT provider, message_id FROM deliveries ORDER BY 2")
        assert recorded.fetchall() == [("fake", "fake-1"), ("fake", "fake-2")]  # the receipts'
    reports = queues.drain_json(queues.result)
    assert {(r["email_recipient_id"], r["status"]) for r in reports} == {
        ("ann", "sent"),
        ("ben", "sent"),
    }


def test_a_send_whose_write_waits_for_the_database_is_answered_as_sent(
    wire: Wire,
    queues: Queues,
    proxy: PostgresProxy,
    clean_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What the API's single send answers, and the consumer acknowledges, when the receipt
    carries the write: the recipient as sent by that provider, its report left to the
    receipt's write."""
    services = wire(sender=CutsTheDatabase(proxy), **through(proxy))
    caplog.set_level(logging.WARNING, logger="mmms.delivery")
    before = datetime.now(UTC)

    [outcome] = services.delivery.deliver_many([job("ann")])

    assert outcome.kind is Outcome.SENT
    sent = outcome.delivery
    assert (sent.status, sent.provider, sent.message_id) == (DeliveryState.SENT, "fake", "fake-1")
    assert sent.sent_at is not None
    assert before <= sent.sent_at <= datetime.now(UTC)
    assert sent.result_pending is False
    waiting = [r for r in caplog.records if r.name == "mmms.delivery"]
    assert [(r.getMessage(), getattr(r, "delivery_id", None)) for r in waiting] == [
        ("sent; the write waits for the database", str(sent.id))
    ]
    [receipt] = queues.drain_json(queues.processing)
    assert receipt["mmms_receipt"]["delivery_id"] == str(sent.id)


def a_receipt(services: Any, name: str) -> QueueRecord:
    row = record_sent(services, f"{name}@example.org", "unused", email_id="r")
    body = receipt_body(row.id, SendResult("fake", f"{name}-1"))
    return QueueRecord(f"m-{name}", body, f"handle-{name}", receive_count=1)


def test_a_receipt_while_the_database_is_still_down_goes_back_on_the_queue_delayed(
    wire: Wire, queues: Queues, proxy: PostgresProxy
) -> None:
    services = wire(sender=FakeProvider("fake"), **through(proxy))
    record = a_receipt(services, "ann")
    proxy.cut()

    report = services.consumer.process_batch([record])

    assert report.acknowledged == [record]  # this copy is done with ...
    assert delayed(queues) == (0, 1)  # ... a new one waits out the outage, using no receives


def test_a_receipt_with_the_database_and_the_queue_down_is_retried(
    wire: Wire, proxy: PostgresProxy
) -> None:
    services = wire(sender=FakeProvider("fake"), **through(proxy, mail_queue_url=QUEUE_DOWN))
    record = a_receipt(services, "ann")
    proxy.cut()

    report = services.consumer.process_batch([record])

    assert report.acknowledged == []
    assert [r for r, _ in report.retry] == [record]


def test_the_database_and_the_receipt_queue_both_down_after_a_send_leave_it_to_the_lease(
    wire: Wire, proxy: PostgresProxy, clean_database: str
) -> None:
    """The case the README names: the receipt cannot be written either. The recipient is
    retried once its lease expires, and so gets the email twice, never zero times."""
    provider = CutsTheDatabase(proxy)
    services = wire(sender=provider, **through(proxy, mail_queue_url=QUEUE_DOWN))
    ann = job("ann")

    outcome = services.delivery.deliver(ann)

    assert outcome.kind is Outcome.RETRY
    assert outcome.error == "the database is unreachable: the outcome could not be recorded"
    proxy.restore()
    services = wire(sender=FakeProvider("again"), **through(proxy))
    assert services.delivery.deliver(ann).kind is Outcome.BUSY  # the lease keeps others off
    with psycopg.connect(clean_database) as conn:  # ... until it expires
        conn.execute("UPDATE deliveries SET lease_until = now() - interval '1 second'")
    assert services.delivery.deliver(ann).kind is Outcome.SENT
    assert len(provider.sent) == 1
    assert statuses(clean_database) == {"ann": "sent"}


class HeldFirst(FakeProvider):
    """Holds the first send until released; later sends go straight through."""

    def __init__(self) -> None:
        super().__init__("held")
        self.started = threading.Event()
        self.release = threading.Event()

    def send(self, message: OutgoingMessage) -> SendResult:
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(timeout=10)
        return super().send(message)


def test_a_lease_lost_mid_send_keeps_the_new_holders_record(
    wire: Wire, clean_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="mmms.delivery")
    provider = HeldFirst()
    services = wire(sender=provider)
    ann = job("ann")
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(services.delivery.deliver, ann)
        assert provider.started.wait(timeout=10)
        with psycopg.connect(clean_database) as conn:  # the first sender's lease runs out
            conn.execute("UPDATE deliveries SET lease_until = now() - interval '1 second'")
        second = services.delivery.deliver(ann)  # another copy of the message takes it
        provider.release.set()
        late = first.result(timeout=10)

    assert second.kind is Outcome.SENT
    assert late.kind is Outcome.SENT  # it was sent: never retried
    assert late.delivery.message_id == second.delivery.message_id == "held-1"
    assert [m.to[0].email for m in provider.sent] == ["ann@example.org"] * 2
    with psycopg.connect(clean_database) as conn:
        row = conn.execute("SELECT status, message_id FROM deliveries").fetchall()
    assert row == [("sent", "held-1")]  # the late sender did not overwrite it
    lost = [r for r in caplog.records if r.name == "mmms.delivery"]
    assert [(r.levelname, r.getMessage(), getattr(r, "delivery_id", None)) for r in lost] == [
        ("ERROR", "lease lost during a send", str(late.delivery.id))
    ]


@pytest.mark.parametrize("events_queue", [True, False])
def test_ses_events_meeting_the_database_down_are_retried(
    wire: Wire, moto: MotoServer, proxy: PostgresProxy, clean_database: str, events_queue: bool
) -> None:
    events = create_events_queue(moto)
    queue_url = {"mail_events_queue_url": events.url} if events_queue else {}
    services = wire(sender=FakeProvider("fake"), **through(proxy, **queue_url))
    record_sent(services, "fay@example.org", "ses-1")
    events.publish_via_sns(ses_events.bounce("ses-1", "fay@example.org"))
    records = events_records(events)
    proxy.cut()

    with pytest.raises(BatchIncompleteError) as raised:
        handle_events_batch(records, services)

    expected = (
        "1 of 1 records will be retried"
        if events_queue
        else "events queue not configured: the whole batch is retried"
    )
    assert str(raised.value).startswith(expected)
    proxy.restore()
    services = wire(sender=FakeProvider("fake"), **through(proxy, mail_events_queue_url=events.url))
    consume_events(services, events)
    assert statuses(clean_database) == {"fay@example.org": "bounced"}


def events_records(events: Any) -> list[QueueRecord]:
    from mmms_local.worker import sqs_receiver

    records: list[QueueRecord] = sqs_receiver(events.sqs, events.url, wait_seconds=0)(10)
    # Visible again at once, as after a Lambda failure with no delay.
    for record in records:
        events.sqs.change_message_visibility(
            QueueUrl=events.url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=0
        )
    return records
