"""How fast MMMS accepts bulk mail and how fast its consumer sends it.

Measures, in one run:

1. accept time: wall time of POST /v1/mail through the real app in-process with N unique
   recipients, once with the processing queue on moto's SQS server (the real adapter over
   HTTP, so moto's own per-call cost is included) and once with an in-memory queue (MMMS's
   own cost only: validation, rendering, database, serialisation), plus a phase breakdown
   of the largest request;
2. consumer throughput: the same kind of queued records sent by ``QueueConsumer.process_batch``
   in batches of 10 and by a plain sequential loop (the seed's design), against a provider
   that answers after a fixed latency; and the floor of the batch design: its three
   statements (lease, outcomes, reports marked) around the same waits, nothing else;
3. database round trips per record of the Lambda handler, counted by a proxy in front of
   PostgreSQL.

Run from the repository root::

    .venv/bin/python -m bench.bench_pipeline [--sizes 1000 10000] [--repeat 3]
        [--consumer-records 1000] [--latency-ms 50] [--json bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.environment import SENDER, BenchEnvironment, bench_environment
from bench.moto_drain import MotoQueueDrain
from bench.phases import accept_phases
from chalicelib.controllers.queue_consumer import handle_processing_batch
from chalicelib.models.mail import DeliveryState, ProcessingMessage, SendMailRequest
from chalicelib.queues.base import QueueRecord
from chalicelib.repositories.deliveries import DeliveryRepository
from chalicelib.repositories.send_leases import Settlement
from chalicelib.services.delivery import Outcome
from chalicelib.services.messages import job_key
from tests.support.round_trips import RoundTripCounter

PROCESSING_QUEUE = "mmms-processing"  # the name tests.support.queues.create_queues gives it


def bulk_body(email_id: str, size: int) -> dict[str, Any]:
    """The seed's example request with ``size`` recipients, each with its own id."""
    return {
        "recipients": [
            {
                "name": f"Recipient {i}",
                "mail": f"user{i}@example.org",
                "company": "Acme Corp",
                "emailRecipientId": f"r-{i:05d}",
            }
            for i in range(size)
        ],
        "sender_name": "Support Team",
        "sender_email": SENDER,
        "sender_organisation_name": "Acme Corp",
        "subject": "Hello {{name}}",
        "html_template": "<html><body><h1>Hello {{name}}</h1><p>{{company}}</p></body></html>",
        "text_template": "Hello {{name}} from {{sender_organisation_name}}",
        "client_env_id": "env-123",
        "email_id": email_id,
        "projectId": "project-456",
        "closureId": "closure-789",
    }


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


# --- accept -------------------------------------------------------------------------------


@dataclass
class AcceptResult:
    queue: str
    recipients: int
    seconds: list[float]
    request_bytes: int
    response_bytes: int

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seconds)


def _accept_once(
    env: BenchEnvironment, size: int, drain: MotoQueueDrain | None
) -> tuple[float, int, int]:
    body = bulk_body(_unique(f"accept-{size}"), size)
    started = time.perf_counter()
    status, answer = env.post_mail(body)
    elapsed = time.perf_counter() - started
    if status != 202 or answer["data"]["count"] != size:
        raise RuntimeError(f"bulk request refused: {status} {str(answer)[:500]}")
    queued = drain.take() if drain else len(env.memory_queue.take())
    if queued != size:
        raise RuntimeError(f"{queued} of {size} messages reached the processing queue")
    return elapsed, len(json.dumps(body)), len(json.dumps(answer))


def _accept_sizes(
    env: BenchEnvironment, label: str, sizes: list[int], repeat: int, drain: MotoQueueDrain | None
) -> list[AcceptResult]:
    results = []
    env.use(sqs=drain is not None)
    _accept_once(env, 10, drain)  # warm-up: pool, boto3 client, imports
    for size in sizes:
        runs = [_accept_once(env, size, drain) for _ in range(repeat)]
        results.append(AcceptResult(label, size, [r[0] for r in runs], runs[0][1], runs[0][2]))
        print(f"  accept {size:>6} via {label:<17} mean {results[-1].mean:.3f} s", flush=True)
    return results


def measure_accept(env: BenchEnvironment, sizes: list[int], repeat: int) -> list[AcceptResult]:
    results = _accept_sizes(env, "in-memory", sizes, repeat, None)
    with MotoQueueDrain(env.moto, PROCESSING_QUEUE) as drain:
        results += _accept_sizes(env, "SQS (moto, HTTP)", sizes, repeat, drain)
    return results


# --- consumer -----------------------------------------------------------------------------


@dataclass
class ConsumerResult:
    mode: str
    records: int
    seconds: float
    batch_seconds: list[float]

    @property
    def emails_per_second(self) -> float:
        return self.records / self.seconds


def _queued_records(env: BenchEnvironment, email_id: str, size: int) -> list[QueueRecord]:
    """Fresh ``queued`` delivery rows and their processing messages, made by MailService."""
    container = env.use(sqs=False)
    container.mail.submit(env.key_id, SendMailRequest.model_validate(bulk_body(email_id, size)))
    bodies = env.memory_queue.take()
    return [QueueRecord(f"m-{i}", body, f"h-{i}", 1) for i, body in enumerate(bodies)]


def _chunks(records: list[QueueRecord], size: int) -> list[list[QueueRecord]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def _run_consumer(env: BenchEnvironment, records: list[QueueRecord], batch: int) -> list[float]:
    consumer = env.use(sqs=False).consumer
    times = []
    for chunk in _chunks(records, batch):
        started = time.perf_counter()
        report = consumer.process_batch(chunk)
        times.append(time.perf_counter() - started)
        if report.retry:
            raise RuntimeError(f"{len(report.retry)} records were not sent")
    return times


def _run_sequential(env: BenchEnvironment, records: list[QueueRecord], batch: int) -> list[float]:
    """The seed's loop: per record parse, look up, send, record, publish; one at a time."""
    container = env.use(sqs=False)
    times = []
    for chunk in _chunks(records, batch):
        started = time.perf_counter()
        for record in chunk:
            job = ProcessingMessage.model_validate_json(record.body)
            outcome = container.delivery.deliver(job)
            if outcome.kind is not Outcome.SENT:
                raise RuntimeError(f"record not sent: {outcome.kind}")
        times.append(time.perf_counter() - started)
    return times


def _check_all_sent(env: BenchEnvironment, email_id: str, size: int) -> None:
    repo = DeliveryRepository(env.use(sqs=False).database)
    rows = repo.find_many(env.key_id, email_id, [f"r-{i:05d}" for i in range(size)])
    sent = sum(1 for row in rows.values() if row.status is DeliveryState.SENT)
    if sent != size:
        raise RuntimeError(f"only {sent} of {size} records are sent")


def _run_floor(
    env: BenchEnvironment, records: list[QueueRecord], batch: int, latency: float
) -> list[float]:
    """The floor of any design that leases before sending and records after: the same three
    statements (lease, outcomes, reports marked) around ``batch`` concurrent waits of the
    provider's latency, and nothing else (no parsing, rendering, provider, reports)."""
    services = env.use(sqs=False)
    repo, leases = services.deliveries, services.leases
    times = []
    with ThreadPoolExecutor(max_workers=batch) as pool:
        for chunk in _chunks(records, batch):
            keys = [job_key(ProcessingMessage.model_validate_json(r.body)) for r in chunk]
            started = time.perf_counter()
            claims = leases.claim_keys(keys, 120)
            list(pool.map(lambda _claim: time.sleep(latency), claims))
            settled = leases.settle_many(
                [
                    Settlement(c.delivery, DeliveryState.SENT, "floor", f"floor-{c.delivery.id}")
                    for c in claims.values()
                ]
            )
            repo.results_published(list(settled.values()))
            times.append(time.perf_counter() - started)
    return times


def measure_floor(env: BenchEnvironment, size: int, batch: int, latency: float) -> ConsumerResult:
    _run_floor(env, _queued_records(env, _unique("warm"), batch), batch, latency)
    email_id = _unique("floor")
    records = _queued_records(env, email_id, size)
    started = time.perf_counter()
    batch_times = _run_floor(env, records, batch, latency)
    result = ConsumerResult(
        "floor (the 3 statements + waits)", size, time.perf_counter() - started, batch_times
    )
    _check_all_sent(env, email_id, size)
    print(f"  {result.mode:<34} {result.emails_per_second:7.1f} emails/s", flush=True)
    return result


def measure_consumer(env: BenchEnvironment, size: int, batch: int) -> list[ConsumerResult]:
    runners = {
        f"consumer (process_batch, {batch}/batch)": _run_consumer,
        "sequential loop (seed)": _run_sequential,
    }
    results = []
    for mode, run in runners.items():
        run(env, _queued_records(env, _unique("warm"), batch), batch)  # warm-up, not counted
        email_id = _unique("consume")
        records = _queued_records(env, email_id, size)
        sent_before, published_before = env.provider.sent, env.results.published
        started = time.perf_counter()
        batch_times = run(env, records, batch)
        elapsed = time.perf_counter() - started
        _check_all_sent(env, email_id, size)
        if env.provider.sent - sent_before != size:
            raise RuntimeError("the provider did not receive every email exactly once")
        if env.results.published - published_before != size:
            raise RuntimeError("not every result was published")
        results.append(ConsumerResult(mode, size, elapsed, batch_times))
        print(f"  {mode:<34} {results[-1].emails_per_second:7.1f} emails/s", flush=True)
    return results


@dataclass
class RoundTrips:
    records: int
    batch: int
    round_trips: int

    @property
    def per_record(self) -> float:
        return self.round_trips / self.records


def measure_round_trips(env: BenchEnvironment, size: int, batch: int) -> RoundTrips:
    """Database round trips of the Lambda handler (``handle_processing_batch``: the batch,
    then the pending-results courtesy) per record, counted by a proxy in front of PostgreSQL."""
    warm_id, email_id = _unique("rt-warm"), _unique("rt")
    warm, records = _queued_records(env, warm_id, batch), _queued_records(env, email_id, size)
    database_url = env.database_url
    with RoundTripCounter(database_url) as counter:
        env.database_url = counter.conninfo
        try:
            container = env.use(sqs=False)
            handle_processing_batch(warm, container)  # opens the pool's connections
            before = counter.round_trips
            for chunk in _chunks(records, batch):
                handle_processing_batch(chunk, container)
            counted = counter.round_trips - before
        finally:
            env.database_url = database_url
            env.use(sqs=False)
    _check_all_sent(env, email_id, size)
    result = RoundTrips(size, batch, counted)
    print(f"  database round trips per record: {result.per_record:.2f}", flush=True)
    return result


# --- report -------------------------------------------------------------------------------


def machine(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "postgresql": row[0] if row else "?",
    }


def print_report(
    info: dict[str, Any],
    accept: list[AcceptResult],
    *,
    phases: dict[str, float],
    consumer: list[ConsumerResult],
    round_trips: RoundTrips,
    latency: float,
    batch: int,
) -> None:
    print()
    print(
        f"machine: {info['cpus']} CPUs, {info['platform']}, Python {info['python']},"
        f" PostgreSQL {info['postgresql']}"
    )
    print()
    print("Accept: POST /v1/mail, wall time per request (s)")
    print(
        f"{'recipients':>10}  {'queue':<17} {'runs':>4} {'mean':>7} {'min':>7} {'max':>7}"
        f" {'recipients/s':>12}  {'request':>8}"
    )
    for r in accept:
        print(
            f"{r.recipients:>10}  {r.queue:<17} {len(r.seconds):>4} {r.mean:7.3f}"
            f" {min(r.seconds):7.3f} {max(r.seconds):7.3f} {r.recipients / r.mean:12.0f}"
            f"  {r.request_bytes / 1024:6.0f} KiB"
        )
    if phases:
        total = sum(phases.values())
        print()
        print(f"Accept phases, in-memory queue, largest request, one pass (total {total:.3f} s)")
        for name, seconds in phases.items():
            print(f"  {name:<52} {seconds:7.3f} s  {100 * seconds / total:5.1f} %")
    print()
    print(f"Consumer: {consumer[0].records} records, provider latency {latency * 1000:.0f} ms")
    print(
        f"{'mode':<34} {'total s':>8} {'emails/s':>9} {'batch ms: mean':>15} {'p50':>6}"
        f" {'p95':>6} {'max':>6}"
    )
    for c in consumer:
        ms = [t * 1000 for t in c.batch_seconds]
        print(
            f"{c.mode:<34} {c.seconds:8.2f} {c.emails_per_second:9.1f} {statistics.fmean(ms):15.1f}"
            f" {statistics.median(ms):6.1f} {_percentile(ms, 0.95):6.1f} {max(ms):6.1f}"
        )
    ratio = consumer[0].emails_per_second / consumer[1].emails_per_second
    p50 = statistics.median(consumer[0].batch_seconds)
    print(
        f"speed-up: {ratio:.1f}x; a batch of {batch} takes {p50 / latency:.2f} provider latencies"
        f" (p50), {statistics.fmean(consumer[0].batch_seconds) / latency:.2f} (mean)"
    )
    floor = statistics.median(consumer[-1].batch_seconds)
    print(
        f"floor: {floor / latency:.2f} provider latencies (p50); the consumer is"
        f" {1000 * (p50 - floor):.1f} ms above it"
    )
    print(
        f"database round trips: {round_trips.round_trips} for {round_trips.records} records in"
        f" batches of {round_trips.batch} (Lambda handler), {round_trips.per_record:.2f} per record"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1000, 10000],
        help="recipients per bulk request (default: 1000 10000; max 10000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="requests per size and queue")
    parser.add_argument("--consumer-records", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=10, help="records per consumer batch")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="provider latency")
    parser.add_argument(
        "--db-pool-max",
        type=int,
        help="DB_POOL_MAX_SIZE (default: the product's; the pool gets max(this, concurrency/2))",
    )
    parser.add_argument("--no-phases", action="store_true", help="skip the accept breakdown")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    latency = args.latency_ms / 1000

    started = time.perf_counter()
    overrides = {} if args.db_pool_max is None else {"db_pool_max_size": args.db_pool_max}
    with bench_environment(latency, overrides) as env:
        info = machine(env.database_url)
        print("measuring accept time ...", flush=True)
        accept = measure_accept(env, args.sizes, args.repeat)
        phases = (
            {}
            if args.no_phases
            else accept_phases(env, bulk_body(_unique("phases"), max(args.sizes)))
        )
        print("measuring consumer throughput ...", flush=True)
        consumer = measure_consumer(env, args.consumer_records, args.batch_size)
        consumer.append(measure_floor(env, args.consumer_records, args.batch_size, latency))
        print("counting database round trips ...", flush=True)
        round_trips = measure_round_trips(env, min(args.consumer_records, 200), args.batch_size)
    print_report(
        info,
        accept,
        phases=phases,
        consumer=consumer,
        round_trips=round_trips,
        latency=latency,
        batch=args.batch_size,
    )
    print(f"\n(whole run {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "parameters": vars(args) | {"json": str(args.json)},
                    "accept": [asdict(r) | {"mean": r.mean} for r in accept],
                    "accept_phases_seconds": phases,
                    "consumer": [
                        asdict(c) | {"emails_per_second": c.emails_per_second} for c in consumer
                    ],
                    "round_trips": asdict(round_trips) | {"per_record": round_trips.per_record},
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
