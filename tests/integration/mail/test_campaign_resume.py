"""Campaign processing killed at several points resumes from its checkpoint: no row is staged,
recorded or queued twice, none is lost; a cancel sends nothing after it is answered."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.bootstrap import Container
from chalicelib.controllers.queue_consumer import handle_processing_batch
from chalicelib.errors import BatchIncompleteError, QueueUnavailableError
from chalicelib.models.campaigns import CHUNK_KEY, CampaignStatus
from chalicelib.providers.base import OutgoingMessage, SendResult
from chalicelib.queues.base import ProcessingQueue
from chalicelib.repositories.campaigns import CampaignRepository
from chalicelib.services.campaign_processing import CampaignProcessor
from tests.integration.mail.conftest import Wire, mail_headers
from tests.integration.mail.test_campaigns import create, lines, status
from tests.support.campaigns import Uploads, create_uploads, put_file
from tests.support.fake_providers import FakeProvider
from tests.support.http import call
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues, consume_until_empty

ROWS = 230  # with an invalid row every 23rd line: 220 valid
CHECKPOINT_ROWS = 50
FAN_OUT_ROWS = 40


class Killed(BaseException):
    """The process dies here (a BaseException: nothing on the way catches it)."""


class DyingRepository(CampaignRepository):
    """Dies at the ``nth`` call of ``step`` (before it, or after it committed when
    ``after``), and then holds its lease as a dead process does."""

    def __init__(self, database: Any, step: str, nth: int, *, after: bool = False) -> None:
        super().__init__(database)
        self._step, self._nth, self._after = step, nth, after
        self._calls: Counter[str] = Counter()
        self.died = False

    def _maybe_die(self, step: str, when_after: bool) -> None:
        if step != self._step or self._after != when_after:
            return
        if self._calls[step] == self._nth:
            self.died = True
            raise Killed(f"{step} #{self._nth}")

    def _counted(self, step: str, call: Any) -> Any:
        self._calls[step] += 1
        self._maybe_die(step, when_after=False)
        result = call()
        self._maybe_die(step, when_after=True)
        return result

    def stage(self, *args: Any, **kwargs: Any) -> None:
        self._counted("stage", lambda: super(DyingRepository, self).stage(*args, **kwargs))

    def finish_validation(self, *args: Any, **kwargs: Any) -> Any:
        return self._counted(
            "finish_validation",
            lambda: super(DyingRepository, self).finish_validation(*args, **kwargs),
        )

    def record(self, *args: Any, **kwargs: Any) -> Any:
        return self._counted("record", lambda: super(DyingRepository, self).record(*args, **kwargs))

    def queued(self, *args: Any, **kwargs: Any) -> None:
        self._counted("queued", lambda: super(DyingRepository, self).queued(*args, **kwargs))

    def release(self, campaign_id: str, token: uuid.UUID) -> None:
        if not self.died:
            super().release(campaign_id, token)


class DyingQueue:
    """The processing queue, dying right after its ``nth`` send was taken."""

    def __init__(self, queue: ProcessingQueue, nth: int) -> None:
        self._queue, self._nth, self._calls = queue, nth, 0

    def send_many(self, bodies: list[str], delay_seconds: int = 0) -> list[int]:
        failed = self._queue.send_many(bodies, delay_seconds)
        self._calls += 1
        if self._calls == self._nth:
            raise Killed("after the queue took the chunks")
        return failed

    def delete_many(self, receipt_handles: list[str]) -> None:
        self._queue.delete_many(receipt_handles)

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        self._queue.retry_later(receipt_handle, delay_seconds)


@pytest.fixture
def uploads(moto: MotoServer, queues: Queues) -> Uploads:
    return create_uploads(moto)


def the_file() -> bytes:
    return lines(
        "mail,emailRecipientId",
        *[f"r{i}@example.org,r-{i}" if i % 23 else f"broken-{i},r-{i}" for i in range(1, ROWS + 1)],
    )


VALID_LINES = [i + 1 for i in range(1, ROWS + 1) if i % 23]  # the header is line 1
INVALID_LINES = [i + 1 for i in range(1, ROWS + 1) if not i % 23]


def chunks_by_line(queues: Queues) -> Counter[int]:
    """How many chunk messages on the processing queue cover each valid row's line (left on
    the queue; a chunk's range may span invalid lines, which have no row)."""
    covered: Counter[int] = Counter()
    seen = []
    while records := queues.receive(queues.processing):
        seen += records
        for record in records:
            chunk = json.loads(record.body)[CHUNK_KEY]
            for line in range(chunk["first_line"], chunk["last_line"] + 1):
                if line in VALID_LINES:
                    covered[line] += 1
    for record in seen:  # visible again for the consumer
        queues.sqs.change_message_visibility(
            QueueUrl=queues.processing, ReceiptHandle=record.receipt_handle, VisibilityTimeout=0
        )
    return covered


KILL_POINTS = [
    ("stage", 2, False),  # mid-validation: the second checkpoint's COPY never commits
    ("stage", 3, True),  # mid-validation, right after a checkpoint committed
    ("finish_validation", 1, False),  # the whole file read, the verdict not written
    ("record", 2, False),  # fan-out: the second step's rows never recorded
    ("record", 2, True),  # fan-out: recorded, their chunks not queued yet
    ("queued", 3, True),  # fan-out: chunks queued and checkpointed, the next step not begun
]


@pytest.mark.parametrize(("step", "nth", "after"), KILL_POINTS)
def test_processing_killed_resumes_without_queueing_a_row_twice_or_losing_one(
    wire: Wire,
    api: Client,
    api_key: str,
    uploads: Uploads,
    queues: Queues,
    clean_database: str,
    step: str,
    nth: int,
    after: bool,
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider, campaign_bucket=uploads.bucket)
    created = create(api, api_key, skip_invalid=True)
    assert put_file(created["upload"], the_file()).status_code == 200
    repo = DyingRepository(services.database, step, nth, after=after)
    dying = processor(services, repo, services.processing_queue)
    key = f"uploads/{created['campaign_id']}.csv"

    with pytest.raises(Killed):
        dying.uploaded(key, time.monotonic() + 60)
    expire_leases(clean_database)  # what time does for a dead processor's lease
    resumed = processor(services, CampaignRepository(services.database), services.processing_queue)
    while resumed.process(created["campaign_id"], time.monotonic() + 60) is False:
        expire_leases(clean_database)

    valid_lines = VALID_LINES
    covered = chunks_by_line(queues)
    assert sorted(covered) == valid_lines  # none lost
    assert set(covered.values()) == {1}  # none queued twice
    assert staged_and_recorded(clean_database) == (len(valid_lines), len(valid_lines))
    consume_until_empty(services, queues, max_rounds=60)
    sent = Counter(m.to[0].email for m in provider.sent)
    assert len(sent) == len(valid_lines)
    assert set(sent.values()) == {1}
    final = status(api, api_key, created["campaign_id"])
    assert final["rows"] == {"total": ROWS, "valid": 220, "invalid": 10}
    # The errors listed before the kill's checkpoint are kept through the resume.
    assert [e["line"] for e in final["errors"]] == INVALID_LINES
    assert final["counts"]["sent"] == 220
    assert final["status"] == "completed"


def test_killed_after_the_queue_took_chunks_queues_them_again_and_sends_once(
    wire: Wire, api: Client, api_key: str, uploads: Uploads, queues: Queues, clean_database: str
) -> None:
    """The one window left: the queue took a step's chunks, the process died before their
    checkpoint (the same as dying in ``queued`` before it commits). The resume queues that
    step's chunks again; the send lease sends each row once."""
    provider = FakeProvider("fake")
    services = wire(sender=provider, campaign_bucket=uploads.bucket)
    created = create(api, api_key, skip_invalid=True)
    assert put_file(created["upload"], the_file()).status_code == 200
    repo = DyingRepository(services.database, "none", 0)
    dying = processor(services, repo, DyingQueue(services.processing_queue, 2))

    with pytest.raises(Killed):
        dying.uploaded(f"uploads/{created['campaign_id']}.csv", time.monotonic() + 60)
    repo.died = True
    expire_leases(clean_database)
    resumed = processor(services, CampaignRepository(services.database), services.processing_queue)
    assert resumed.process(created["campaign_id"], time.monotonic() + 60)

    covered = chunks_by_line(queues)
    twice = sorted(line for line, n in covered.items() if n == 2)
    assert len(covered) == 220
    assert set(covered.values()) <= {1, 2}
    assert 0 < len(twice) <= FAN_OUT_ROWS  # the second step's rows, and no others
    consume_until_empty(services, queues, max_rounds=60)
    sent = Counter(m.to[0].email for m in provider.sent)
    assert len(sent) == 220
    assert set(sent.values()) == {1}


class GatedProvider(FakeProvider):
    """Holds every send until ``release`` (``started``: the first send is held)."""

    def __init__(self) -> None:
        super().__init__("gated")
        self.started = threading.Event()
        self.release = threading.Event()
        self.sent_at: list[float] = []

    def send(self, message: OutgoingMessage) -> SendResult:
        self.started.set()
        assert self.release.wait(timeout=20), "the test never released the sends"
        result = super().send(message)
        self.sent_at.append(time.monotonic())
        return result


def test_cancel_mid_send_sends_nothing_after_it_is_answered(
    wire: Wire,
    api: Client,
    api_key: str,
    uploads: Uploads,
    queues: Queues,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waiting = threading.Event()  # the cancel is committed and looks for held rows
    polling = threading.Event()  # it found rows held and looks again: it is waiting for them
    decided = threading.Event()  # polling, or the cancel answered without waiting
    held = CampaignRepository.held
    looks: list[int] = []

    def observed_held(self: CampaignRepository, campaign_id: str) -> int:
        waiting.set()
        looks.append(held(self, campaign_id))
        if len(looks) >= 2 and looks[0] > 0:
            polling.set()
            decided.set()
        return looks[-1]

    def cancel() -> tuple[Any, float]:
        try:
            answer = call(
                api,
                "POST",
                f"/v1/campaigns/{created['campaign_id']}/cancel",
                headers=mail_headers(api_key),
            )
            return answer, time.monotonic()
        finally:
            decided.set()

    monkeypatch.setattr(CampaignRepository, "held", observed_held)
    provider = GatedProvider()
    services = wire(sender=provider, campaign_bucket=uploads.bucket, consumer_concurrency=2)
    created = create(api, api_key)
    put_file(created["upload"], lines("mail", *[f"r{i}@example.org" for i in range(60)]))
    services.campaign_processor.uploaded(
        f"uploads/{created['campaign_id']}.csv", time.monotonic() + 60
    )
    first = queues.receive(queues.processing, limit=1)  # one chunk: ten rows

    with ThreadPoolExecutor(max_workers=2) as pool:
        sending = pool.submit(consume, services, first)
        assert provider.started.wait(timeout=20)  # a sender holds the chunk's rows
        cancelling = pool.submit(cancel)
        assert waiting.wait(timeout=20)  # cancelled: no row of it is leased from now on
        assert decided.wait(timeout=20)
        # The sender still holds its rows: the cancel has not answered, it waits for them.
        waited = polling.is_set() and not cancelling.done()
        provider.release.set()  # the held rows are sent; then the cancel answers
        sending.result(timeout=20)
        answer, answered = cancelling.result(timeout=30)
    consume_until_empty(services, queues)  # the other chunks: their rows are cancelled

    assert waited, "the cancel answered while a sender held rows"
    assert answer.status == 200
    assert all(at <= answered for at in provider.sent_at)  # nothing sent after the answer
    assert len(provider.sent) == 10
    final = status(api, api_key, created["campaign_id"])
    assert final["status"] == "cancelled"
    assert final["counts"]["sent"] == 10
    assert final["counts"]["cancelled"] == 50
    reported: dict[str, set[str]] = {}
    for report in queues.drain_json(queues.result):
        reported.setdefault(report["email_recipient_id"], set()).add(report["status"])
    # Each row's one final status is reported (reports are at least once: a batch's look for
    # older pending reports may publish a fresh one a second time, never another status).
    assert all(len(statuses) == 1 for statuses in reported.values())
    assert Counter(s for statuses in reported.values() for s in statuses) == {
        "sent": 10,
        "cancelled": 50,
    }


def cancelled_with_rows_queued(
    wire: Wire, api: Client, api_key: str, uploads: Uploads, rows: int
) -> tuple[FakeProvider, Container, dict[str, Any]]:
    """A campaign of ``rows`` rows, all queued, then cancelled as a cancel request that ran
    out of time leaves it: the campaign row only, its rows still queued."""
    provider = FakeProvider("fake")
    services = wire(sender=provider, campaign_bucket=uploads.bucket)
    created = create(api, api_key)
    put_file(created["upload"], lines("mail", *[f"r{i}@example.org" for i in range(rows)]))
    services.campaign_processor.uploaded(
        f"uploads/{created['campaign_id']}.csv", time.monotonic() + 60
    )
    campaigns = CampaignRepository(services.database)
    record = campaigns.get(created["campaign_id"])
    assert record is not None
    assert campaigns.cancel(record.id, record.api_key_id)  # the campaign row only
    return provider, services, created


def test_a_cancelled_campaigns_queued_rows_are_cancelled_not_sent_by_the_consumer(
    wire: Wire, api: Client, api_key: str, uploads: Uploads, queues: Queues
) -> None:
    """The consumer meets rows of a campaign cancelled since they were queued (the cancel's
    own clean-up has not reached them): it cancels and reports them, never leases them."""
    provider, services, created = cancelled_with_rows_queued(wire, api, api_key, uploads, 15)

    consume_until_empty(services, queues)

    assert provider.sent == []
    final = status(api, api_key, created["campaign_id"])
    assert final["counts"]["cancelled"] == 15
    reported = queues.drain_json(queues.result)
    assert sorted({r["status"] for r in reported}) == ["cancelled"]
    assert len(reported) == 15


def consume(services: Container, records: Any) -> None:
    with contextlib.suppress(BatchIncompleteError):
        handle_processing_batch(records, services)


def processor(services: Container, repo: CampaignRepository, queue: Any) -> CampaignProcessor:
    return CampaignProcessor(
        repo,
        services.deliveries,
        services.delivery,
        queue,
        services.upload_store,
        max_bytes=services.settings.campaign_max_bytes,
        checkpoint_rows=CHECKPOINT_ROWS,
        fan_out_rows=FAN_OUT_ROWS,
    )


def expire_leases(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE campaigns SET worker_until = now() - interval '1 second'")


def staged_and_recorded(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        staged = conn.execute("SELECT count(*) FROM campaign_rows").fetchone()
        recorded = conn.execute(
            "SELECT count(*) FROM deliveries WHERE campaign_id IS NOT NULL"
        ).fetchone()
    assert staged is not None
    assert recorded is not None
    return int(staged[0]), int(recorded[0])


def test_processing_stops_at_its_deadline_after_each_step_and_goes_on_from_there(
    wire: Wire, api: Client, api_key: str, uploads: Uploads, queues: Queues
) -> None:
    """A clock at the deadline: each call takes one step (a checkpoint of validation, one
    fan-out statement) and answers whether the campaign has nothing left to do."""
    services = wire(sender=FakeProvider("fake"), campaign_bucket=uploads.bucket)
    created = create(api, api_key, skip_invalid=True)
    assert put_file(created["upload"], the_file()).status_code == 200
    repo = CampaignRepository(services.database)
    stepping = CampaignProcessor(
        repo,
        services.deliveries,
        services.delivery,
        services.processing_queue,
        services.upload_store,
        max_bytes=services.settings.campaign_max_bytes,
        clock=lambda: 100.0,
        checkpoint_rows=CHECKPOINT_ROWS,
        fan_out_rows=FAN_OUT_ROWS,
    )

    def progress() -> tuple[str, int, int, int]:
        campaign = repo.get(created["campaign_id"])
        assert campaign is not None
        return (
            campaign.status.value,
            campaign.validated_through,
            campaign.recorded_through,
            campaign.queued_through,
        )

    campaign_id = stepping.uploaded(f"uploads/{created['campaign_id']}.csv", 100.0)
    steps = [progress()]
    answers: list[bool] = []
    while len(answers) < 20 and not (answers and answers[-1]):
        answers.append(stepping.process(created["campaign_id"], 100.0))
        steps.append(progress())

    assert campaign_id == created["campaign_id"]
    assert steps == [
        ("validating", 51, 0, 0),  # a checkpoint every 50 lines (the header is line 1)
        ("validating", 101, 0, 0),
        ("validating", 151, 0, 0),
        ("validating", 201, 0, 0),
        ("sending", 231, 42, 42),  # the file's end, its verdict, the first 40 rows out
        ("sending", 231, 84, 84),
        ("sending", 231, 126, 126),
        ("sending", 231, 168, 168),
        ("sending", 231, 210, 210),
        ("sending", 231, 230, 230),
        ("sending", 231, 230, 230),  # nothing left to record: done
    ]
    assert answers == [False] * 9 + [True]
    covered = chunks_by_line(queues)
    assert sorted(covered) == VALID_LINES
    assert set(covered.values()) == {1}


class RefusingQueue:
    """The processing queue, refusing each send's first ``refuse`` bodies (all: ``None``)."""

    def __init__(self, queue: ProcessingQueue, refuse: int | None, times: int) -> None:
        self._queue, self._refuse, self._times = queue, refuse, times
        self.sent: list[list[str]] = []

    def send_many(self, bodies: list[str], delay_seconds: int = 0) -> list[int]:
        self.sent.append(list(bodies))
        if len(self.sent) > self._times:
            return self._queue.send_many(bodies, delay_seconds)
        refused = len(bodies) if self._refuse is None else min(self._refuse, len(bodies))
        taken = self._queue.send_many(bodies[refused:], delay_seconds)
        return list(range(refused)) + [refused + i for i in taken]

    def delete_many(self, receipt_handles: list[str]) -> None:
        self._queue.delete_many(receipt_handles)

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        self._queue.retry_later(receipt_handle, delay_seconds)


def test_chunks_the_queue_refuses_are_sent_again_twice_then_processing_stops(
    wire: Wire, api: Client, api_key: str, uploads: Uploads, queues: Queues, clean_database: str
) -> None:
    services = wire(sender=FakeProvider("fake"), campaign_bucket=uploads.bucket)
    created = create(api, api_key, skip_invalid=True)
    assert put_file(created["upload"], the_file()).status_code == 200
    key = f"uploads/{created['campaign_id']}.csv"
    repo = CampaignRepository(services.database)
    refusing = RefusingQueue(services.processing_queue, refuse=None, times=3)

    with pytest.raises(QueueUnavailableError) as stopped:
        processor(services, repo, refusing).uploaded(key, time.monotonic() + 60)

    # The first step's 40 rows are 4 chunks of 10: offered three times, then given up.
    assert [len(bodies) for bodies in refusing.sent] == [4, 4, 4]
    assert str(stopped.value) == (
        f"4 chunks of campaign {created['campaign_id']} could not be queued;"
        " processing resumes from its checkpoint"
    )
    assert chunks_by_line(queues) == Counter()
    flaky = RefusingQueue(services.processing_queue, refuse=1, times=2)
    assert processor(services, repo, flaky).process(created["campaign_id"], time.monotonic() + 60)
    # Each send's first chunk refused twice, taken the third time.
    assert [len(bodies) for bodies in flaky.sent[:3]] == [4, 1, 1]
    covered = chunks_by_line(queues)
    assert sorted(covered) == VALID_LINES
    assert set(covered.values()) == {1}


class StolenRepository(CampaignRepository):
    """Before its first checkpoint, the lease runs out and another processor takes it."""

    def __init__(self, database: Any, database_url: str) -> None:
        super().__init__(database)
        self._url = database_url
        self.thief: tuple[Any, uuid.UUID] | None = None

    def stage(self, campaign_id: str, *args: Any, **kwargs: Any) -> None:
        if self.thief is None:
            expire_leases(self._url)
            self.thief = CampaignRepository(self._db).take(campaign_id)
        super().stage(campaign_id, *args, **kwargs)


def test_a_processor_whose_lease_was_taken_stops_and_leaves_it_to_the_taker(
    wire: Wire,
    api: Client,
    api_key: str,
    uploads: Uploads,
    queues: Queues,
    clean_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    services = wire(sender=FakeProvider("fake"), campaign_bucket=uploads.bucket)
    created = create(api, api_key, skip_invalid=True)
    assert put_file(created["upload"], the_file()).status_code == 200
    campaign_id = created["campaign_id"]
    repo = StolenRepository(services.database, clean_database)

    assert repo.move(
        campaign_id, CampaignStatus.VALIDATING, only_from=[CampaignStatus.AWAITING_UPLOAD]
    )
    stopped = processor(services, repo, services.processing_queue).process(
        campaign_id, time.monotonic() + 60
    )

    assert stopped is False
    assert repo.thief is not None
    lost = [r for r in caplog.records if r.getMessage() == "processing lease lost"]
    assert [(r.levelname, getattr(r, "campaign_id", None)) for r in lost] == [
        ("WARNING", campaign_id)
    ]
    assert staged_and_recorded(clean_database) == (0, 0)
    # The taker still holds it: nobody else may process it now.
    other = processor(services, CampaignRepository(services.database), services.processing_queue)
    assert other.process(campaign_id, time.monotonic() + 60) is False
    assert staged_and_recorded(clean_database) == (0, 0)
    repo.release(campaign_id, repo.thief[1])
    assert other.process(campaign_id, time.monotonic() + 60) is True
    assert staged_and_recorded(clean_database) == (220, 220)


class SettlingInTwos(CampaignProcessor):
    """Settles a cancelled campaign's queued rows two at a time (1,000 in production), so a
    test sees the batches and the deadline between them without a thousand rows."""

    def _settle_cancelled(self, campaign_id: str, deadline: float, batch: int = 1000) -> bool:
        return super()._settle_cancelled(campaign_id, deadline, batch=2)


def test_a_cancelled_campaigns_queued_rows_are_settled_by_its_next_processing(
    wire: Wire, api: Client, api_key: str, uploads: Uploads, queues: Queues
) -> None:
    """A cancel whose request ran out of time leaves rows queued: the campaign's next
    processing (the tick's) cancels and reports them a batch at a time, stops at its
    deadline after a whole batch, and says it is done once none is left."""
    provider, services, created = cancelled_with_rows_queued(wire, api, api_key, uploads, 5)
    campaigns = CampaignRepository(services.database)
    record = campaigns.get(created["campaign_id"])
    assert record is not None
    processor = SettlingInTwos(
        campaigns,
        services.deliveries,
        services.delivery,
        services.processing_queue,
        services.upload_store,
        max_bytes=services.settings.campaign_max_bytes,
    )

    past_its_deadline = processor.process(record.id, time.monotonic() - 1)
    first = queues.drain_json(queues.result)
    done = processor.process(record.id, time.monotonic() + 60)
    second = queues.drain_json(queues.result)

    assert (past_its_deadline, len(first)) == (False, 2)  # one whole batch, then stopped
    assert (done, len(second)) == (True, 3)  # two batches of two, the last of one
    reported = [r["email_recipient_id"] for r in [*first, *second]]
    assert len(set(reported)) == 5  # each row reported once
    assert {r["status"] for r in [*first, *second]} == {"cancelled"}
    final = status(api, api_key, created["campaign_id"])
    assert (final["status"], final["counts"]["cancelled"]) == ("cancelled", 5)
    consume_until_empty(services, queues)
    assert provider.sent == []
