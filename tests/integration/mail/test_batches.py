"""A processing batch is handled together: one statement per step whatever its size, every
kind of outcome side by side, and a message met twice in one batch sent once."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

import psycopg
import pytest
from chalice.test import Client

from chalicelib.bootstrap import build_container
from chalicelib.errors import MessageRejectedError
from chalicelib.models.mail import DeliveryState, ProcessingMessage
from chalicelib.providers.base import OutgoingMessage, SendResult
from chalicelib.queues.base import QueueRecord
from chalicelib.repositories.delivery_events import DeliveryEventRepository
from chalicelib.services.delivery import Outcome
from tests.conftest import make_settings
from tests.integration.mail.conftest import Wire, mail_headers, seed_request
from tests.support.fake_providers import FakeProvider
from tests.support.http import call
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues
from tests.support.recording import record_sent
from tests.support.round_trips import RoundTripCounter


def recipients(count: int, prefix: str = "user") -> list[dict[str, str]]:
    return [
        {"name": f"R {i}", "mail": f"{prefix}{i}@example.org", "emailRecipientId": f"r-{i:02d}"}
        for i in range(count)
    ]


def queued(api: Client, key: str, queues: Queues, count: int) -> list[QueueRecord]:
    """POST a bulk email to ``count`` recipients; its processing messages, taken off the
    queue in recipient order (as one batch would hold them)."""
    answer = call(
        api,
        "POST",
        "/v1/mail",
        headers=mail_headers(key),
        body=seed_request(recipients=recipients(count)),
    )
    assert answer.status == 202, answer.json
    bodies = [json.dumps(body) for body in queues.drain_json(queues.processing)]
    assert len(bodies) == count
    ordered = sorted(bodies, key=lambda body: json.loads(body)["email_recipient_id"])
    return [QueueRecord(f"m-{i}", body, f"h-{i}", 1) for i, body in enumerate(ordered)]


def statuses(database: str) -> dict[str, str]:
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT email_recipient_id, status FROM deliveries").fetchall()
    return dict(rows)  # type: ignore[arg-type]


def test_a_batch_of_ten_costs_the_round_trips_of_a_batch_of_one(
    wire: Wire,
    api: Client,
    api_key: str,
    queues: Queues,
    moto: MotoServer,
    clean_database: str,
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider)
    records = queued(api, api_key, queues, 11)
    foreign = [outside_producers_copy(r, "outside-1") for r in records]

    with RoundTripCounter(clean_database) as counter:
        services = build_container(
            make_settings(
                counter.conninfo,
                mail_queue_url=queues.processing,
                mail_result_queue_url=queues.result,
                aws_endpoint_url=moto.endpoint_url,
                aws_region=moto.region,
            ),
            sender=provider,
        )
        try:
            services.database.ping()  # the pool's connection is open and checked
            before = counter.round_trips
            one = services.consumer.process_batch(records[:1])
            after_one = counter.round_trips
            ten = services.consumer.process_batch(records[1:])
            after_ten = counter.round_trips
            services.consumer.process_batch(foreign[:1])
            after_foreign_one = counter.round_trips
            services.consumer.process_batch(foreign[1:])
            after_foreign_ten = counter.round_trips
        finally:
            services.close()

    assert len(one.acknowledged) == 1
    assert len(ten.acknowledged) == 10
    assert len(provider.sent) == 22
    assert set(statuses(clean_database).values()) == {"sent"}
    assert len(queues.drain_json(queues.result)) == 22
    # Lease (with the suppression lookup), outcomes, reports marked: per batch, not per record.
    assert after_one - before == 3
    assert after_ten - after_one == 3
    # Messages queued outside MMMS have no rows yet: one insert and a second lease, per batch.
    assert after_foreign_one - after_ten == 5
    assert after_foreign_ten - after_foreign_one == 5


def outside_producers_copy(record: QueueRecord, email_id: str) -> QueueRecord:
    """The message as a producer outside MMMS would queue it: the seed's fields only."""
    body = json.loads(record.body)
    body.pop("api_key_id")
    body["email_id"] = email_id
    return QueueRecord(f"o-{record.message_id}", json.dumps(body), f"o-{record.receipt_handle}", 1)


def test_the_same_message_twice_in_a_batch_is_sent_once(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider)
    first, second = queued(api, api_key, queues, 2)
    twice = QueueRecord("m-again", first.body, "h-again", 1)

    report = services.consumer.process_batch([first, twice, second])

    assert len(provider.sent) == 2
    assert sorted(m.to[0].email for m in provider.sent) == [
        "user0@example.org",
        "user1@example.org",
    ]
    assert [r.message_id for r in report.acknowledged] == ["m-0", "m-1"]
    assert [r.message_id for r, _ in report.retry] == ["m-again"]  # busy: looked at again
    again = services.consumer.process_batch([twice])
    assert [r.message_id for r in again.acknowledged] == ["m-again"]
    assert len(provider.sent) == 2
    assert statuses(clean_database) == {"r-00": "sent", "r-01": "sent"}


class RejectsOne:
    """Refuses one address for good; sends everything else through ``provider``."""

    def __init__(self, provider: FakeProvider, refused: str) -> None:
        self.provider = provider
        self.refused = refused
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> SendResult:
        if message.to[0].email == self.refused:
            raise MessageRejectedError("fake", f"{self.refused}: mailbox does not exist")
        with self._lock:
            return self.provider.send(message)


def test_one_batch_holds_every_kind_of_outcome(
    wire: Wire,
    api: Client,
    api_key: str,
    queues: Queues,
    clean_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mmms.delivery")
    provider = FakeProvider("fake")
    services = wire(sender=RejectsOne(provider, "user1@example.org"))
    records = queued(api, api_key, queues, 4)
    services.suppressions.add(["USER2@example.org"], "manual")
    services.consumer.process_batch(records[3:])  # r-03 is sent before the batch
    provider.sent.clear()
    queues.drain_json(queues.result)
    foreign = json.loads(records[0].body) | {
        "email_id": "foreign-1",
        "email_recipient_id": "f-1",
        "recipient_email": "foreign@example.org",
        "html_template": "<p>{{ surname }}</p>",  # not a placeholder MMMS knows
    }
    batch = [
        records[0],  # sent
        records[1],  # rejected by the provider: failed
        records[2],  # listed since it was queued: suppressed, not sent
        records[3],  # sent already: acknowledged, not sent again
        QueueRecord("m-foreign", json.dumps(foreign), "h-foreign", 1),  # cannot render: failed
    ]

    report = services.consumer.process_batch(batch)

    assert len(report.acknowledged) == 5
    assert [m.to[0].email for m in provider.sent] == ["user0@example.org"]
    assert statuses(clean_database) == {
        "r-00": "sent",
        "r-01": "failed",
        "r-02": "suppressed",
        "r-03": "sent",
        "f-1": "failed",
    }
    reports = {r["email_recipient_id"]: r for r in queues.drain_json(queues.result)}
    assert {rid: r["status"] for rid, r in reports.items()} == {
        "r-00": "sent",
        "r-01": "failed",
        "r-02": "suppressed",
        "f-1": "failed",
    }
    assert "does not exist" in reports["r-01"]["result"]["last_error"]
    assert "suppression list (manual)" in reports["r-02"]["result"]["status_detail"]
    assert reports["f-1"]["result"]["status_detail"] == "template_error"
    with psycopg.connect(clean_database) as conn:
        attempts = dict(conn.execute("SELECT email_recipient_id, attempts FROM deliveries"))
        pending = conn.execute("SELECT count(*) FROM deliveries WHERE result_pending").fetchone()
    assert attempts["r-02"] == 0  # never a send attempt
    assert pending == (0,)
    with psycopg.connect(clean_database) as conn:
        ids = {
            str(i): rid for i, rid in conn.execute("SELECT id, email_recipient_id FROM deliveries")
        }
    failures = [r for r in caplog.records if r.getMessage() == "delivery failed permanently"]
    assert sorted(
        (ids.get(getattr(r, "delivery_id", "")), getattr(r, "detail", None)) for r in failures
    ) == [("f-1", "template_error"), ("r-01", "rejected")]
    assert all("does not exist" in str(r.error) for r in failures if r.detail == "rejected")


class BreaksOn:
    """Fails one address with an error no provider raises (a bug); sends the others."""

    def __init__(self, provider: FakeProvider, address: str) -> None:
        self.provider = provider
        self.address = address
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> SendResult:
        if message.to[0].email == self.address:
            raise RuntimeError("boom")
        with self._lock:
            return self.provider.send(message)


def test_an_unexpected_error_leaves_that_recipient_to_a_retry_and_its_batch_mates_go_on(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=BreaksOn(provider, "user0@example.org"))
    jobs = [ProcessingMessage.model_validate_json(r.body) for r in queued(api, api_key, queues, 3)]

    outcomes = services.delivery.deliver_many(jobs)

    assert [o.kind for o in outcomes] == [Outcome.RETRY, Outcome.SENT, Outcome.SENT]
    broken = outcomes[0]
    assert (broken.delivery.email_recipient_id, broken.delivery.status) == (
        "r-00",
        DeliveryState.QUEUED,
    )
    assert broken.error == "unexpected error: boom"
    assert sorted(m.to[0].email for m in provider.sent) == [
        "user1@example.org",
        "user2@example.org",
    ]
    assert statuses(clean_database) == {"r-00": "queued", "r-01": "sent", "r-02": "sent"}


def test_a_report_is_kept_pending_when_its_row_moved_on_before_it_was_marked(
    wire: Wire,
) -> None:
    services = wire(sender=FakeProvider("fake"))
    repo = services.deliveries
    sent = record_sent(services, "a@example.org", "fake-1")  # reported as sent: pending
    delivered = (
        DeliveryEventRepository(services.database)
        .apply_event(
            "fake-1",
            event_type="delivered",
            at=datetime.now(UTC),
            provider="fake",
            detail=None,
            event_key="delivered-1",
            concerns=lambda _row: True,
            moves_to=DeliveryState.DELIVERED,
            moves_from=frozenset({DeliveryState.SENT}),
        )[0]
        .delivery
    )

    repo.results_published([sent])  # the "sent" report went out; "delivered" has not yet

    assert [(r.id, r.status) for r in repo.pending_results(10)] == [
        (sent.id, DeliveryState.DELIVERED)
    ]
    repo.results_published([delivered])
    assert repo.pending_results(10) == []
