"""Bulk sending against a provider that throttles above N emails/s, with and without governance.

Several consumer instances run in parallel (threads, each with its own container and so its
own database pool), taking batches of 10 from one simulated SQS queue (visibility delays,
receive counts, a dead-letter queue after 5 receives) and sending through the real
``QueueConsumer`` and ``ProviderChain``: primary a simulated provider that accepts at most N
sends in any second and throttles beyond, backup a second provider (any send there is a
failover). The recipients are queued as seed-format messages, as an outside producer would.

With governance every instance reserves its slots in the shared schedule in PostgreSQL
(``SendRateGovernor``); without it they send as fast as they can and rely on throttling
backoff. Reports the time against the ideal ``recipients / N``, throttles, failovers, failed
and dead-lettered recipients, and the database round trips per recipient (every instance's
connections go through a counting proxy, ``tests/support/round_trips.py``).

    .venv/bin/python -m bench.bench_send_rate --recipients 2000 --rate 50 --instances 4
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import psycopg

from bench.doubles import MemoryResultQueue
from chalicelib.bootstrap import Container, build_container
from chalicelib.db import Database
from chalicelib.errors import ProviderThrottledError
from chalicelib.migrate import apply_migrations
from chalicelib.providers.base import OutgoingMessage, SendResult
from chalicelib.providers.chain import ProviderChain
from chalicelib.queues.base import QueueRecord
from chalicelib.repositories.send_rate import SendSlotRepository
from chalicelib.services.send_rate import SendRateGovernor
from tests.conftest import make_settings
from tests.support.database import isolated_schema, postgres_server
from tests.support.fake_providers import FakeProvider
from tests.support.round_trips import RoundTripCounter

MAX_RECEIVES = 5


class ThrottlingProvider:
    """Accepts at most ``rate`` sends in any one-second window; throttles the others."""

    name = "primary"

    def __init__(self, rate: float, latency_seconds: float = 0.02) -> None:
        self.rate = rate
        self._latency = latency_seconds
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()
        self.sent = 0
        self.throttled = 0

    def send(self, message: OutgoingMessage) -> SendResult:
        time.sleep(self._latency)
        with self._lock:
            now = time.monotonic()
            while self._accepted and self._accepted[0] <= now - 1.0:
                self._accepted.popleft()
            if len(self._accepted) >= self.rate:
                self.throttled += 1
                raise ProviderThrottledError(self.name, "Maximum sending rate exceeded")
            self._accepted.append(now)
            self.sent += 1
        return SendResult(self.name, f"p-{uuid.uuid4()}")

    def close(self) -> None:
        """Nothing is kept open."""


@dataclass
class _Message:
    body: str
    visible_at: float = 0.0
    receives: int = 0
    handle: str = ""


@dataclass
class SimulatedQueue:
    """SQS as the consumer sees it: visibility, receive counts, a dead-letter queue."""

    visibility_seconds: float = 30.0
    messages: dict[str, _Message] = field(default_factory=dict)
    dead_letters: int = 0
    received: int = 0  # records handed out (receives), over ...
    batches: int = 0  # ... this many non-empty receives
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send_many(self, bodies: list[str], delay_seconds: int = 0) -> list[int]:
        with self._lock:
            for body in bodies:
                self.messages[uuid.uuid4().hex] = _Message(body, time.monotonic() + delay_seconds)
        return []

    def receive(self, limit: int) -> list[QueueRecord]:
        now = time.monotonic()
        taken = []
        with self._lock:
            for message_id, message in list(self.messages.items()):
                if len(taken) == limit:
                    break
                if message.visible_at > now:
                    continue
                if message.receives >= MAX_RECEIVES:
                    del self.messages[message_id]
                    self.dead_letters += 1
                    continue
                message.receives += 1
                message.visible_at = now + self.visibility_seconds
                message.handle = uuid.uuid4().hex
                taken.append(
                    QueueRecord(message_id, message.body, message.handle, message.receives)
                )
            self.received += len(taken)
            self.batches += bool(taken)
        return taken

    def delete_many(self, receipt_handles: list[str]) -> None:
        handles = set(receipt_handles)
        with self._lock:
            for message_id in [m for m, msg in self.messages.items() if msg.handle in handles]:
                del self.messages[message_id]

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        with self._lock:
            for message in self.messages.values():
                if message.handle == receipt_handle:
                    message.visible_at = time.monotonic() + delay_seconds

    def empty(self) -> bool:
        with self._lock:
            return not self.messages


@dataclass
class RunResult:
    governed: bool
    seconds: float
    ideal_seconds: float
    sent: int
    failovers: int
    failed: int
    dead_letters: int
    throttles: int
    unfinished: int
    round_trips: int
    batches: int
    received: int


def run(
    database_url: str, *, recipients: int, rate: float, instances: int, governed: bool
) -> RunResult:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE deliveries, emails, send_rate_slots CASCADE")
    queue = SimulatedQueue()
    email_id = f"rate-{uuid.uuid4().hex[:8]}"
    queue.send_many([_job(email_id, i) for i in range(recipients)])
    primary, backup = ThrottlingProvider(rate), FakeProvider("backup")
    with RoundTripCounter(database_url) as counter:
        result = _run_instances(
            counter, queue, email_id, primary, backup, instances=instances, governed=governed
        )
    return RunResult(
        governed=governed,
        ideal_seconds=recipients / rate,
        failovers=len(backup.sent),
        dead_letters=queue.dead_letters,
        throttles=primary.throttled,
        batches=queue.batches,
        received=queue.received,
        **result,
    )


def _run_instances(
    counter: RoundTripCounter,
    queue: SimulatedQueue,
    email_id: str,
    primary: ThrottlingProvider,
    backup: FakeProvider,
    *,
    instances: int,
    governed: bool,
) -> dict[str, float | int]:
    database_url = counter.conninfo
    rate = primary.rate
    recipients = len(queue.messages)
    settings = make_settings(
        database_url,
        log_level="ERROR",
        retry_base_delay_seconds=1,
        retry_max_delay_seconds=4,
        mail_queue_max_receives=MAX_RECEIVES,
    )
    containers: list[Container] = []
    pools: list[Database] = []
    for _ in range(instances):
        pool = Database(database_url, max_size=5)
        pools.append(pool)
        governor = SendRateGovernor(SendSlotRepository(pool), {primary.name: rate})
        chain = ProviderChain(
            [primary, backup], pace=governor.pace if governed else (lambda _provider: None)
        )
        containers.append(
            build_container(
                settings, sender=chain, processing_queue=queue, result_queue=MemoryResultQueue()
            )
        )
    started = time.monotonic()
    deadline = started + 3 * recipients / rate + 60
    threads = [threading.Thread(target=_consume, args=(c, queue, deadline)) for c in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    with psycopg.connect(database_url) as conn:
        counts = dict(
            conn.execute(
                "SELECT status, count(*) FROM deliveries WHERE email_id = %s GROUP BY status",
                (email_id,),
            ).fetchall()
        )
    for container in containers:
        container.close()
    for pool in pools:
        pool.close()
    return {
        "seconds": seconds,
        "sent": int(counts.get("sent", 0)),
        "failed": int(counts.get("failed", 0)),
        "unfinished": int(counts.get("queued", 0)),
        "round_trips": counter.round_trips,
    }


def _consume(container: Container, queue: SimulatedQueue, deadline: float) -> None:
    """One consumer instance: what Lambda does with each batch of 10."""
    while time.monotonic() < deadline and not queue.empty():
        records = queue.receive(10)
        if not records:
            time.sleep(0.05)
            continue
        report = container.consumer.process_batch(records)
        queue.delete_many([r.receipt_handle for r in report.acknowledged])
        for record, delay in report.retry:
            queue.retry_later(record.receipt_handle, delay)


def _job(email_id: str, index: int) -> str:
    return json.dumps(
        {
            "email_id": email_id,
            "email_recipient_id": f"r-{index:05}",
            "sender_email": "news@example.com",
            "subject": "Hello {{name}}",
            "html_template": "<p>Hello {{name}}</p>",
            "recipient_name": f"R {index}",
            "recipient_email": f"r{index}@example.org",
        }
    )


@contextmanager
def database() -> Iterator[str]:
    with ExitStack() as stack:
        server = stack.enter_context(postgres_server())
        url = stack.enter_context(isolated_schema(server))
        apply_migrations(url)
        yield url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--instances", type=int, default=4)
    args = parser.parse_args()
    print(
        f"{args.recipients} recipients, provider limit {args.rate:g}/s,"
        f" {args.instances} consumer instances x 10 concurrent sends"
    )
    print(
        f"{'governance':11} {'time':>8} {'vs ideal':>9} {'sent':>6} {'throttles':>10}"
        f" {'failovers':>10} {'failed':>7} {'dead letters':>13} {'unfinished':>11}"
        f" {'batches':>8} {'records/batch':>14} {'round trips/recipient':>22}"
    )
    with database() as url:
        for governed in (True, False):
            r = run(
                url,
                recipients=args.recipients,
                rate=args.rate,
                instances=args.instances,
                governed=governed,
            )
            print(
                f"{'on' if governed else 'off':11} {r.seconds:7.1f}s"
                f" {100 * (r.seconds / r.ideal_seconds - 1):+8.1f}% {r.sent:6}"
                f" {r.throttles:10} {r.failovers:10} {r.failed:7} {r.dead_letters:13}"
                f" {r.unfinished:11} {r.batches:8} {r.received / max(1, r.batches):14.1f}"
                f" {r.round_trips / args.recipients:22.2f}"
            )


if __name__ == "__main__":
    main()
