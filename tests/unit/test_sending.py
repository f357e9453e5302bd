"""The send step (``services/sending.py``), purely: what each kind of send ends as (the
provider's answer and the row's settlement), which sender a test key's recipient goes to,
the render budget a send is held to, and the send threads (as many sends in flight as
``concurrency``, started again after ``close``). Rows are built by hand: nothing is stored."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.models.mail import DeliveryState, ProcessingMessage
from chalicelib.providers.base import OutgoingMessage, SendResult
from chalicelib.repositories.delivery_rows import Delivery
from chalicelib.repositories.send_leases import Settlement
from chalicelib.services.render_budget import RenderBudget
from chalicelib.services.sending import Attempt, Leased, SendPipeline, failed
from chalicelib.services.templates import TemplateLimitError
from tests.support.fake_providers import FakeProvider
from tests.support.waiting import wait_until

QUEUED_AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def job(number: int = 1, **overrides: Any) -> ProcessingMessage:
    fields: dict[str, Any] = {
        "email_id": "news-1",
        "email_recipient_id": f"r-{number}",
        "sender_email": "team@mail.example.com",
        "subject": f"Hello {{{{name}}}} #{number}",
        "html_template": "<p>Hi {{name}}</p>",
        "recipient_name": f"Reader {number}",
        "recipient_email": f"reader{number}@example.org",
    }
    fields.update(overrides)
    return ProcessingMessage.model_validate(fields)


def claimed(number: int = 1, *, test_mode: bool = False) -> Delivery:
    """The row a sender holds the lease of."""
    return Delivery(
        id=uuid.UUID(int=number),
        api_key_id=None,
        email_id="news-1",
        email_recipient_id=f"r-{number}",
        recipient=f"reader{number}@example.org",
        recipient_name=f"Reader {number}",
        recipient_company=None,
        status=DeliveryState.QUEUED,
        provider=None,
        message_id=None,
        attempts=1,
        last_error=None,
        status_detail=None,
        client_env_id=None,
        project_id=None,
        closure_id=None,
        metadata={},
        result_pending=False,
        queued_at=QUEUED_AT,
        sent_at=None,
        dispatched_at=QUEUED_AT,
        lease_token=uuid.UUID(int=1000 + number),
        test_mode=test_mode,
    )


class Raising:
    """A sender whose every send raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def send(self, message: OutgoingMessage) -> SendResult:
        raise self.error


class Gathering:
    """Sends only once ``parties`` sends are in flight together (else the barrier breaks
    and the send raises); records the thread each send ran on."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=10)
        self.provider = FakeProvider("live")
        self.threads: list[str] = []

    def send(self, message: OutgoingMessage) -> SendResult:
        self.threads.append(threading.current_thread().name)
        self.barrier.wait()
        return self.provider.send(message)


class Holding:
    """Holds every send until ``release`` is set; counts the sends in flight at once and the
    threads they ran on."""

    def __init__(self) -> None:
        self.provider = FakeProvider("live")
        self.release = threading.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> SendResult:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.threads.add(threading.current_thread().name)
        try:
            assert self.release.wait(timeout=10)
            return self.provider.send(message)
        finally:
            with self._lock:
                self.in_flight -= 1


class Handed(dict[int, Leased]):
    """A batch that notes when every job in it has been handed to the send threads (its
    values were all read)."""

    def __init__(self, jobs: dict[int, Leased]) -> None:
        super().__init__(jobs)
        self.all_handed = threading.Event()

    def values(self) -> Iterator[Leased]:  # type: ignore[override]
        yield from super().values()
        self.all_handed.set()


class ThreadNoting:
    """Sends with ``provider``, noting the thread each send ran on."""

    def __init__(self) -> None:
        self.provider = FakeProvider("live")
        self.threads: list[str] = []

    def send(self, message: OutgoingMessage) -> SendResult:
        self.threads.append(threading.current_thread().name)
        return self.provider.send(message)


def pipeline(
    sender: Any = None,
    test_sender: Any = None,
    *,
    budget: RenderBudget | None = None,
    concurrency: int = 4,
) -> SendPipeline:
    return SendPipeline(
        sender if sender is not None else FakeProvider("live"),
        test_sender if test_sender is not None else FakeProvider("simulator"),
        budget or RenderBudget(),
        concurrency,
    )


def test_a_sent_recipient_is_settled_sent_with_the_providers_answer() -> None:
    live, simulator = FakeProvider("live"), FakeProvider("simulator")
    row = claimed()

    attempt = pipeline(live, simulator).attempt(job(), row)

    assert attempt == Attempt(
        row,
        result=SendResult("live", "live-1", {"MessageId": "live-1"}),
        settlement=Settlement(row, DeliveryState.SENT, provider="live", message_id="live-1"),
    )
    [message] = live.sent
    assert message.message_id == f"<{row.id}@mail.example.com>"
    assert (message.to[0].email, message.subject) == ("reader1@example.org", "Hello Reader 1 #1")
    assert simulator.sent == []


def test_a_test_keys_recipient_goes_to_the_test_sender_only() -> None:
    live, simulator = FakeProvider("live"), FakeProvider("simulator")
    row = claimed(test_mode=True)

    attempt = pipeline(live, simulator).attempt(job(), row)

    assert attempt.settlement == Settlement(
        row, DeliveryState.SENT, provider="simulator", message_id="simulator-1"
    )
    assert [m.to[0].email for m in simulator.sent] == ["reader1@example.org"]
    assert live.sent == []


def test_a_message_that_cannot_be_rendered_fails_for_good_without_a_send() -> None:
    live = FakeProvider("live")
    row = claimed()

    attempt = pipeline(live).attempt(job(html_template="<p>{{ 1 / 0 }}</p>"), row)

    reason = "template error: ZeroDivisionError: division by zero"
    assert attempt == Attempt(
        row,
        settlement=Settlement(row, DeliveryState.FAILED, error=reason, detail="template_error"),
    )
    assert live.attempts == 0


def test_a_send_is_held_to_the_pipelines_render_budget() -> None:
    live = FakeProvider("live")
    row = claimed()

    attempt = pipeline(live, budget=RenderBudget(max_message_bytes=10)).attempt(job(), row)

    assert attempt.settlement is not None
    assert attempt.settlement.status is DeliveryState.FAILED
    assert attempt.settlement.detail == "template_error"
    assert (attempt.settlement.error or "").startswith("template over budget (MAX_MESSAGE_BYTES)")
    assert live.attempts == 0


def test_no_provider_available_gives_the_row_back_to_the_queue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    row = claimed()

    with caplog.at_level(logging.WARNING, logger="mmms.delivery"):
        attempt = pipeline(FakeProvider("live").fail_unavailable()).attempt(job(), row)

    assert attempt == Attempt(
        row,
        settlement=Settlement(row, DeliveryState.QUEUED, error="live: scripted outage"),
        error="live: scripted outage",
    )
    [record] = caplog.records
    assert (record.levelno, record.getMessage()) == (logging.WARNING, "no provider available")
    assert getattr(record, "delivery_id", None) == str(row.id)
    assert getattr(record, "error", None) == "live: scripted outage"


def test_a_rejected_message_fails_for_good_naming_the_provider() -> None:
    row = claimed()

    attempt = pipeline(FakeProvider("live").fail_rejected()).attempt(job(), row)

    assert attempt == Attempt(
        row,
        settlement=Settlement(
            row,
            DeliveryState.FAILED,
            provider="live",
            error="live: scripted rejection",
            detail="rejected",
        ),
    )


def test_an_unexpected_send_error_settles_nothing_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    row = claimed()

    with caplog.at_level(logging.ERROR, logger="mmms.delivery"):
        attempt = pipeline(Raising(RuntimeError("boom"))).attempt(job(), row)

    assert attempt == Attempt(row, error="unexpected error: boom")
    [record] = caplog.records
    assert record.getMessage() == "unexpected send failure"
    assert getattr(record, "delivery_id", None) == str(row.id)
    assert record.exc_info is not None


def test_a_message_whose_rendering_broke_settles_nothing_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    live = FakeProvider("live")
    row = claimed()
    rendering: Future[OutgoingMessage] = Future()
    rendering.set_exception(RuntimeError("render thread died"))

    with caplog.at_level(logging.ERROR, logger="mmms.delivery"):
        attempt = pipeline(live).attempt(job(), row, rendering)

    assert attempt == Attempt(row, error="unexpected error: render thread died")
    [record] = caplog.records
    assert record.getMessage() == "could not build a message"
    assert getattr(record, "delivery_id", None) == str(row.id)
    assert live.attempts == 0


def test_failed_names_no_provider_unless_given_one() -> None:
    row = claimed()

    assert failed(row, "why", "malformed") == Settlement(
        row, DeliveryState.FAILED, provider=None, error="why", detail="malformed"
    )


def test_a_message_rendered_ahead_is_the_one_sent() -> None:
    live = FakeProvider("live")
    send = pipeline(live)
    try:
        ahead = send.render_ahead([job(1), job(2)])
        assert sorted(ahead) == [0, 1]
        assert [ahead[i].result().subject for i in (0, 1)] == [
            "Hello Reader 1 #1",
            "Hello Reader 2 #2",
        ]
        # The job says #1; the message rendered ahead (#2's) is what goes out.
        send.attempt(job(1), claimed(1), ahead[1])
    finally:
        send.close()

    assert [m.subject for m in live.sent] == ["Hello Reader 2 #2"]
    assert live.sent[0].message_id == f"<{claimed(1).id}@mail.example.com>"


def test_messages_rendered_ahead_are_held_to_the_render_budget() -> None:
    send = pipeline(budget=RenderBudget(max_message_bytes=10))
    try:
        ahead = send.render_ahead([job(1), job(2)])
        errors = [ahead[i].exception(timeout=10) for i in (0, 1)]
    finally:
        send.close()

    assert [type(error) for error in errors] == [TemplateLimitError, TemplateLimitError]


def test_a_batch_of_one_is_rendered_when_it_sends() -> None:
    assert pipeline().render_ahead([job()]) == {}
    assert pipeline().render_ahead([]) == {}


def test_a_batchs_sends_are_in_flight_together_up_to_the_concurrency() -> None:
    sender = Gathering(parties=3)
    send = pipeline(sender, concurrency=3)
    leased: dict[int, Leased] = {i: (job(i), claimed(i), None) for i in (5, 6, 7)}
    try:
        attempts = send.attempt_all(leased)
    finally:
        send.close()

    assert sorted(attempts) == [5, 6, 7]
    for index, attempt in attempts.items():
        assert attempt.claimed == claimed(index)
        assert attempt.settlement is not None
        assert attempt.settlement.status is DeliveryState.SENT
    assert sorted(m.to[0].email for m in sender.provider.sent) == [
        "reader5@example.org",
        "reader6@example.org",
        "reader7@example.org",
    ]
    assert all(name.startswith("mmms-send") for name in sender.threads)


def test_no_more_sends_are_in_flight_than_the_concurrency() -> None:
    """Every send is held until the whole batch was handed to the pool: a pool with more
    threads than ``concurrency`` would have started a thread per job by then."""
    sender = Holding()
    send = pipeline(sender, concurrency=1)
    batch = Handed({i: (job(i), claimed(i), None) for i in (1, 2, 3)})
    try:
        with ThreadPoolExecutor(max_workers=1) as caller:
            running = caller.submit(send.attempt_all, batch)
            assert batch.all_handed.wait(timeout=10)
            wait_until(lambda: sender.in_flight >= 1, "a send to be in flight")
            sender.release.set()
            attempts = running.result(timeout=10)
    finally:
        send.close()

    assert sorted(attempts) == [1, 2, 3]
    assert len(sender.provider.sent) == 3
    assert (sender.most_in_flight, len(sender.threads)) == (1, 1)


def test_a_batch_of_one_is_sent_on_the_callers_thread() -> None:
    sender = ThreadNoting()

    attempts = pipeline(sender).attempt_all({3: (job(3), claimed(3), None)})

    assert list(attempts) == [3]
    assert attempts[3].settlement is not None
    assert attempts[3].settlement.message_id == "live-1"
    assert sender.threads == [threading.current_thread().name]


def test_a_concurrency_below_one_still_sends() -> None:
    sender = ThreadNoting()
    send = pipeline(sender, concurrency=0)
    try:
        attempts = send.attempt_all({i: (job(i), claimed(i), None) for i in (1, 2)})
    finally:
        send.close()

    statuses = [a.settlement.status if a.settlement else None for a in attempts.values()]
    assert statuses == [DeliveryState.SENT, DeliveryState.SENT]
    assert len(sender.provider.sent) == 2
    assert sender.threads == ["mmms-send_0", "mmms-send_0"]  # one send thread: the pool's


def test_the_send_threads_start_again_after_close() -> None:
    live = FakeProvider("live")
    send = pipeline(live)
    batch: dict[int, Leased] = {i: (job(i), claimed(i), None) for i in (1, 2)}

    send.attempt_all(batch)
    send.close()
    again = send.attempt_all(batch)
    send.close()
    send.close()  # closing twice is harmless

    assert {a.settlement.message_id for a in again.values() if a.settlement} == {
        "live-3",
        "live-4",
    }
