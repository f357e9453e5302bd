"""The consumer's verdict on each kind of record, read from what it returns, sends and stores:
the backoff it asks for, campaign chunks, malformed messages and receipts.

The consumer is built here on the container's real repositories and delivery service; only
the campaign chunk expander is a test's own function (what a campaign's rows expand to is
``test_campaigns.py``'s business), so the chunk cases do not need a whole campaign.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from chalicelib.bootstrap import Container
from chalicelib.errors import DatabaseUnavailableError
from chalicelib.models.campaigns import CHUNK_KEY, CampaignChunk
from chalicelib.models.mail import ProcessingMessage
from chalicelib.queues.base import QueueRecord
from chalicelib.repositories.delivery_rows import Delivery, NewDelivery
from chalicelib.services.consumer import BatchReport, QueueConsumer, RetryPolicy
from chalicelib.services.delivery import DeliveryOutcome, DeliveryService
from chalicelib.services.messages import RECEIPT_KEY
from tests.integration.mail.conftest import SENDER, Wire
from tests.support.fake_providers import FakeProvider
from tests.support.queues import Queues
from tests.support.recording import lease
from tests.support.senders import RecipientOutage

Expander = Callable[[list[CampaignChunk]], list[list[ProcessingMessage]]]


def job(name: str, email_id: str = "camp-1") -> ProcessingMessage:
    return ProcessingMessage(
        email_id=email_id,
        email_recipient_id=name,
        sender_email=SENDER,
        subject="Hi {{name}}",
        html_template="<p>Hi {{name}}</p>",
        recipient_name=name.title(),
        recipient_email=f"{name}@example.org",
    )


def record(message_id: str, body: str | dict[str, Any], receives: int = 1) -> QueueRecord:
    text = body if isinstance(body, str) else json.dumps(body)
    return QueueRecord(message_id, text, f"handle-{message_id}", receive_count=receives)


def chunk_body(campaign_id: str, first: int, last: int) -> dict[str, Any]:
    return {CHUNK_KEY: {"campaign_id": campaign_id, "first_line": first, "last_line": last}}


def consumer(services: Container, chunks: Expander | None = None) -> QueueConsumer:
    return QueueConsumer(
        services.deliveries,
        services.delivery,
        RetryPolicy(max_receives=3, base_delay_seconds=30, max_delay_seconds=900),
        chunks=chunks,
    )


def rows(database: str) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "SELECT email_recipient_id, status, email_id, recipient, client_env_id, project_id,"
            " closure_id, api_key_id, status_detail, last_error, dispatched_at IS NOT NULL"
            " FROM deliveries"
        ).fetchall()
    return {row[0]: row[1:] for row in found}


def ids(report: BatchReport) -> tuple[list[str], list[tuple[str, int]]]:
    return (
        [r.message_id for r in report.acknowledged],
        [(r.message_id, delay) for r, delay in report.retry],
    )


# --- backoff -------------------------------------------------------------------------------


def test_each_receive_waits_twice_as_long_as_the_last_up_to_the_maximum() -> None:
    policy = RetryPolicy(max_receives=10, base_delay_seconds=30, max_delay_seconds=900)

    delays = [policy.delay_for(receives) for receives in range(8)]

    assert delays == [30, 30, 60, 120, 240, 480, 900, 900]


def test_the_retried_records_carry_their_own_backoff(wire: Wire) -> None:
    services = wire(
        sender=FakeProvider("down").fail_unavailable(),
        mail_queue_max_receives=5,
        retry_base_delay_seconds=10,
        retry_max_delay_seconds=35,
    )
    batch = [record(f"m-{n}", job(f"r{n}").model_dump_json(), receives=n) for n in (1, 2, 3, 4)]

    report = services.consumer.process_batch(batch)

    assert ids(report) == ([], [("m-1", 10), ("m-2", 20), ("m-3", 35), ("m-4", 35)])
    assert [services.consumer.retry_delay(n) for n in (1, 2, 3)] == [10, 20, 35]


def test_an_empty_batch_is_an_empty_report(wire: Wire) -> None:
    services = wire(sender=FakeProvider("fake"))

    assert services.consumer.process_batch([]) == BatchReport([], [])


# --- campaign chunks -----------------------------------------------------------------------


def test_a_chunk_is_acknowledged_once_every_one_of_its_recipients_is_done(
    wire: Wire, clean_database: str
) -> None:
    provider = FakeProvider("fake")
    outage = RecipientOutage(provider, failing={"bea@example.org"})
    services = wire(sender=outage)
    asked: list[list[CampaignChunk]] = []

    def expand(chunks: list[CampaignChunk]) -> list[list[ProcessingMessage]]:
        asked.append(chunks)
        return [[job("ann"), job("bea")], [job("cid")], []]

    batch = [
        record("chunk-1", chunk_body("camp-1", 1, 2)),
        record("single", job("dan", email_id="single-1").model_dump_json()),
        record("chunk-2", chunk_body("camp-1", 3, 3), receives=2),
        record("chunk-3", chunk_body("camp-1", 4, 5)),  # nothing of it is queued any more
    ]

    report = consumer(services, expand).process_batch(batch)

    assert asked == [
        [
            CampaignChunk(campaign_id="camp-1", first_line=1, last_line=2),
            CampaignChunk(campaign_id="camp-1", first_line=3, last_line=3),
            CampaignChunk(campaign_id="camp-1", first_line=4, last_line=5),
        ]
    ]
    assert ids(report) == (["single", "chunk-2", "chunk-3"], [("chunk-1", 30)])
    assert sorted(m.to[0].email for m in provider.sent) == [
        "ann@example.org",
        "cid@example.org",
        "dan@example.org",
    ]
    assert {rid: row[0] for rid, row in rows(clean_database).items()} == {
        "ann": "sent",
        "bea": "queued",
        "cid": "sent",
        "dan": "sent",
    }


def test_chunks_met_with_the_database_down_are_retried_and_the_rest_of_the_batch_goes_on(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider)

    def database_down(chunks: list[CampaignChunk]) -> list[list[ProcessingMessage]]:
        raise DatabaseUnavailableError("campaign rows unreachable")

    batch = [
        record("chunk-1", chunk_body("camp-1", 1, 2)),
        record("single", job("dan", email_id="single-1").model_dump_json()),
        record("chunk-2", chunk_body("camp-1", 3, 4), receives=3),
    ]
    caplog.set_level(logging.WARNING, logger="mmms.consumer")

    report = consumer(services, database_down).process_batch(batch)

    assert ids(report) == (["single"], [("chunk-1", 30), ("chunk-2", 120)])
    assert [m.to[0].email for m in provider.sent] == ["dan@example.org"]
    warned = [(r.getMessage(), getattr(r, "error", None)) for r in caplog.records]
    assert warned == [("campaign chunks are retried", "campaign rows unreachable")]


def test_a_malformed_chunk_is_acknowledged_and_sends_nothing(
    wire: Wire, clean_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider)
    asked: list[list[CampaignChunk]] = []

    def expand(chunks: list[CampaignChunk]) -> list[list[ProcessingMessage]]:
        asked.append(chunks)
        return [[job("ann")] for _ in chunks]

    caplog.set_level(logging.ERROR, logger="mmms.consumer")

    report = consumer(services, expand).process_batch(
        [record("bad-chunk", {CHUNK_KEY: {"campaign_id": "camp-1", "first_line": 1}})]
    )

    assert ids(report) == (["bad-chunk"], [])
    assert asked == []
    assert provider.sent == []
    assert rows(clean_database) == {}
    logged = [(r.getMessage(), getattr(r, "message_id", None)) for r in caplog.records]
    assert logged == [("malformed campaign chunk", "bad-chunk")]


def test_without_campaigns_a_chunk_is_a_malformed_message_and_acknowledged(
    wire: Wire, clean_database: str
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider)

    report = consumer(services, chunks=None).process_batch(
        [record("chunk-1", chunk_body("camp-1", 1, 2))]
    )

    assert ids(report) == (["chunk-1"], [])
    assert provider.sent == []
    assert rows(clean_database) == {}  # it names no email and no recipient to report


# --- malformed messages --------------------------------------------------------------------


def test_a_malformed_message_is_recorded_failed_with_its_fields_and_its_problems(
    wire: Wire, queues: Queues, clean_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider)
    key = uuid.uuid4()
    long_id = "E" * 250
    long_address = "Dee." + "X" * 330 + "@Example.org"
    body = {
        "email_id": long_id,
        "recipient_email": long_address,
        "sender_email": SENDER,
        "subject": "Hi",
        "html_template": "<p>Hi</p>",
        "cc": ["ok@example.org", "nope"],
        "bcc": ["no"],
        "reply_to": "x",
        "attachments": [{}],
        "metadata": 5,
        "api_key_id": str(key),
        "client_env_id": "env-1",
        "projectId": "project-1",
        "closureId": "closure-1",
    }
    caplog.set_level(logging.ERROR, logger="mmms.consumer")

    report = services.consumer.process_batch([record("bad", body)])

    assert ids(report) == (["bad"], [])
    assert provider.sent == []
    problems = (
        "malformed processing message:"
        " email_id: String should have at most 200 characters;"
        " recipient_email: String should have at most 254 characters;"
        " cc.1: Value error, not an address like name@example.com"
        " (ASCII; write an international domain in punycode, xn--...);"
        " bcc.0: Value error, not an address like name@example.com"
        " (ASCII; write an international domain in punycode, xn--...);"
        " reply_to: Value error, not an address like name@example.com"
        " (ASCII; write an international domain in punycode, xn--...)"
    )
    recipient_id = ("dee." + "x" * 330)[:200]
    assert rows(clean_database) == {
        recipient_id: (
            "failed",
            "E" * 200,
            long_address[:320],
            "env-1",
            "project-1",
            "closure-1",
            key,
            "malformed_message",
            problems,
            True,
        )
    }
    [report_sent] = queues.drain_json(queues.result)
    assert (report_sent["email_recipient_id"], report_sent["status"]) == (recipient_id, "failed")
    logged = [
        (r.getMessage(), getattr(r, "message_id", None), getattr(r, "error", None))
        for r in caplog.records
    ]
    assert logged == [("malformed message", "bad", problems)]


def test_a_malformed_message_keeps_only_text_fields_and_its_given_recipient_id(
    wire: Wire, clean_database: str
) -> None:
    services = wire(sender=FakeProvider("fake"))
    body = {
        "email_id": "news-1",
        "email_recipient_id": "Given-Id",
        "recipient_email": "Not An Address",
        "client_env_id": "",  # empty: not kept
        "projectId": 42,  # not text: not kept
        "closureId": "with \u0000 NUL",  # PostgreSQL cannot store it: not kept
        "api_key_id": "not-a-key",  # an outside producer's: no key
    }

    report = services.consumer.process_batch([record("bad", body)])

    assert ids(report) == (["bad"], [])
    [(rid, row)] = rows(clean_database).items()
    assert rid == "Given-Id"
    assert row[:7] == ("failed", "news-1", "Not An Address", None, None, None, None)


@pytest.mark.parametrize(
    "body",
    [
        {"recipient_email": "dee@example.org"},  # no email
        {"email_id": "news-1"},  # no recipient
        {"email_id": "", "recipient_email": "dee@example.org"},
        {"email_id": "news-1", "recipient_email": "dee\u0000@example.org"},
    ],
    ids=["no-email", "no-recipient", "empty-email", "nul-recipient"],
)
def test_a_malformed_message_naming_no_recipient_is_acknowledged_without_a_row(
    wire: Wire, clean_database: str, body: dict[str, str]
) -> None:
    services = wire(sender=FakeProvider("fake"))

    report = services.consumer.process_batch([record("bad", body)])

    assert ids(report) == (["bad"], [])
    assert rows(clean_database) == {}


def test_a_message_that_is_not_an_object_is_logged_as_the_body_s_problem(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    services = wire(sender=FakeProvider("fake"))
    caplog.set_level(logging.ERROR, logger="mmms.consumer")

    report = services.consumer.process_batch([record("list", "[1, 2]")])

    assert ids(report) == (["list"], [])
    logged = [(r.getMessage(), getattr(r, "error", None)) for r in caplog.records]
    assert logged == [
        ("malformed message", "malformed processing message: body: Input should be an object")
    ]


# --- receipts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "receipt",
    [
        {"delivery_id": "not-a-uuid", "provider": "fake", "message_id": "fake-9"},
        {"provider": "fake", "message_id": "fake-9"},
        {"delivery_id": "<row>", "message_id": "fake-9"},
        {"delivery_id": "<row>", "provider": "fake"},
    ],
    ids=["bad-id", "no-id", "no-provider", "no-message-id"],
)
def test_a_malformed_receipt_is_acknowledged_and_records_nothing(
    wire: Wire, clean_database: str, receipt: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    services = wire(sender=FakeProvider("fake"))
    services.deliveries.insert_new(None, [_new_row("ann")])
    held = lease(services.leases, (None, "news-1", "ann"))
    assert held is not None
    given = {k: str(held.id) if v == "<row>" else v for k, v in receipt.items()}
    caplog.set_level(logging.ERROR, logger="mmms.consumer")

    report = services.consumer.process_batch([record("receipt", {RECEIPT_KEY: given})])

    assert ids(report) == (["receipt"], [])
    assert rows(clean_database)["ann"][0] == "queued"
    logged = [(r.getMessage(), getattr(r, "receipt", None)) for r in caplog.records]
    assert logged == [("malformed receipt", given)]


def test_a_receipt_records_the_send_on_the_row_and_is_acknowledged(
    wire: Wire, queues: Queues, clean_database: str
) -> None:
    services = wire(sender=FakeProvider("fake"))
    services.deliveries.insert_new(None, [_new_row("ann")])
    held = lease(services.leases, (None, "news-1", "ann"))
    assert held is not None
    receipt = {"delivery_id": str(held.id), "provider": "fake", "message_id": "fake-9"}

    report = services.consumer.process_batch([record("receipt", {RECEIPT_KEY: receipt})])

    assert ids(report) == (["receipt"], [])
    with psycopg.connect(clean_database) as conn:
        assert conn.execute("SELECT status, provider, message_id FROM deliveries").fetchall() == [
            ("sent", "fake", "fake-9")
        ]
    assert [(r["email_recipient_id"], r["status"]) for r in queues.drain_json(queues.result)] == [
        ("ann", "sent")
    ]


def _new_row(name: str) -> NewDelivery:
    return NewDelivery(
        email_id="news-1", email_recipient_id=name, recipient=f"{name}@example.org", dispatched=True
    )


# --- what the batch logs, and failures nobody planned for ------------------------------------


class GiveUpFails(DeliveryService):
    """Sends as usual; giving a record up raises ``error`` (the database lost meanwhile, or a
    bug)."""

    def __init__(self, services: Container, error: Exception) -> None:
        super().__init__(
            services.deliveries,
            services.leases,
            FakeProvider("down").fail_unavailable(),
            services.result_queue,
            services.processing_queue,
        )
        self.error = error

    def give_up(self, delivery: Delivery, error: str) -> Delivery:
        raise self.error


class DeliverFails(DeliveryService):
    """Every batch meets ``error`` before anything is sent."""

    def __init__(self, services: Container, error: Exception) -> None:
        super().__init__(
            services.deliveries,
            services.leases,
            FakeProvider("fake"),
            services.result_queue,
            services.processing_queue,
        )
        self.error = error

    def deliver_many(self, jobs: list[ProcessingMessage]) -> list[DeliveryOutcome]:
        raise self.error


def logged(caplog: pytest.LogCaptureFixture, *fields: str) -> list[tuple[Any, ...]]:
    return [
        (r.levelname, r.getMessage(), *(getattr(r, f, None) for f in fields))
        for r in caplog.records
        if r.name == "mmms.consumer"
    ]


def test_each_batch_is_logged_with_what_became_of_its_records(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=RecipientOutage(provider, failing={"bea@example.org"}))
    batch = [
        record("ann", job("ann").model_dump_json()),
        record("bea", job("bea").model_dump_json()),
        record("bad", "not json"),
    ]
    caplog.set_level(logging.INFO, logger="mmms.consumer")

    services.consumer.process_batch(batch)

    assert logged(caplog, "records", "acknowledged", "retry")[-1] == (
        "INFO",
        "batch processed",
        3,
        2,
        1,
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            DatabaseUnavailableError("gone while giving up"),
            ("WARNING", "transient failure", "last", "gone while giving up", False),
        ),
        (RuntimeError("a bug"), ("ERROR", "unexpected failure", "last", None, True)),
    ],
    ids=["transient", "unexpected"],
)
def test_a_failure_deciding_one_records_verdict_retries_that_record_only(
    wire: Wire,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    expected: tuple[Any, ...],
) -> None:
    services = wire(sender=FakeProvider("fake"))
    broken = GiveUpFails(services, error)
    consumer = QueueConsumer(services.deliveries, broken, RetryPolicy(3, 30, 900))
    batch = [
        record("last", job("ann").model_dump_json(), receives=3),  # given up: it raises
        record("bad", "not json"),  # acknowledged as before
    ]
    caplog.set_level(logging.WARNING, logger="mmms.consumer")

    report = consumer.process_batch(batch)

    assert ids(report) == (["bad"], [("last", 120)])
    problems = [
        (*entry[:4], entry[4] is not None)
        for entry in logged(caplog, "message_id", "error", "exc_info")
        if entry[1] != "malformed message"
    ]
    assert problems == [expected]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            DatabaseUnavailableError("gone before the sends"),
            ("WARNING", "transient failure: the batch is retried", "gone before the sends", False),
        ),
        (RuntimeError("a bug"), ("ERROR", "unexpected failure: the batch is retried", None, True)),
    ],
    ids=["transient", "unexpected"],
)
def test_a_failure_before_any_send_retries_the_whole_batch(
    wire: Wire,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    expected: tuple[Any, ...],
) -> None:
    services = wire(sender=FakeProvider("fake"))
    consumer = QueueConsumer(
        services.deliveries, DeliverFails(services, error), RetryPolicy(3, 30, 900)
    )
    batch = [
        record("ann", job("ann").model_dump_json()),
        record("bea", job("bea").model_dump_json(), receives=2),
    ]
    caplog.set_level(logging.WARNING, logger="mmms.consumer")

    report = consumer.process_batch(batch)

    assert ids(report) == ([], [("ann", 30), ("bea", 60)])
    problems = [(*e[:3], e[3] is not None) for e in logged(caplog, "error", "exc_info")]
    assert problems == [expected]
