"""Campaign processing: a generated CSV through the processing code, rows/s and peak RSS.

Each size runs in a process of its own (so its peak RSS is its own): a campaign is created
through the service, its file (N rows, every 50th row invalid, ``skip_invalid``) is put in the
local upload folder as ``make run`` keeps it, and the clock runs from the upload notification
(``CampaignProcessor.uploaded``) until every valid row is staged, recorded as a recipient and
handed to the processing queue (the local queue, in PostgreSQL, as under ``make run``). The
result is checked (status ``sending``, N - N/50 rows queued, the chunk messages on the queue)
before a number is printed.

The SQS path (moto over HTTP) counts the SQS calls per row: the fan-out's ``SendMessageBatch``
and the consumer's ``ReceiveMessage``/``DeleteMessageBatch`` (what Lambda's event source
mapping does), with the provider answering at once.

    .venv/bin/python -m bench.bench_campaign                      # 100,000 and 1,000,000 rows
    .venv/bin/python -m bench.bench_campaign --sizes 20000 --sqs-rows 2000   # quick
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

INVALID_EVERY = 50


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--sqs-rows", type=int, default=2_000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: one size
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.database, args.one)), flush=True)
        return

    from chalicelib.migrate import apply_migrations
    from tests.support.database import isolated_schema, postgres_server

    lines = []
    with ExitStack() as stack:
        server = stack.enter_context(postgres_server())
        for size in args.sizes:
            url = stack.enter_context(isolated_schema(server))
            apply_migrations(url)
            child = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.bench_campaign",
                    "--one",
                    str(size),
                    "--database",
                    url,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if child.returncode:
                raise SystemExit(child.stderr[-3000:])
            result = json.loads(child.stdout.strip().splitlines()[-1])
            print(
                f"  validate {result['validate_s']:.1f} s,"
                f" record+queue {result['fan_out_s']:.1f} s, {result['chunks']} chunk messages,"
                f" file {result['file_mib']:.1f} MiB",
                flush=True,
            )
            lines.append(
                f"campaign: {size} rows in {result['seconds']:.1f} s,"
                f" {size / result['seconds']:.0f} rows/s, peak RSS {result['peak_rss_mib']:.0f} MiB"
            )
        url = stack.enter_context(isolated_schema(server))
        apply_migrations(url)
        sqs = sqs_calls(url, args.sqs_rows)
    print(
        f"SQS path, {sqs['rows']} valid rows: fan-out SendMessageBatch"
        f" {sqs['send_calls']} ({sqs['send_calls'] / sqs['rows']:.3f}/row), consumer ReceiveMessage"
        f" {sqs['receive_calls']} + DeleteMessageBatch {sqs['delete_calls']}"
        f" ({(sqs['receive_calls'] + sqs['delete_calls']) / sqs['rows']:.3f}/row);"
        f" a chunk message is {sqs['chunk_bytes']} B, one recipient's message"
        f" {sqs['recipient_bytes']} B (a message per recipient: {1 / 10:.3f} SendMessageBatch/row)"
    )
    for line in lines:
        print(line)


def write_file(path: Path, rows: int) -> None:
    """``rows`` rows (every ``INVALID_EVERY``th one an invalid address), written as a stream."""
    with path.open("w", encoding="utf-8", newline="") as file:
        file.write("mail,name,emailRecipientId,plan\r\n")
        for i in range(1, rows + 1):
            mail = f"broken-{i}@" if i % INVALID_EVERY == 0 else f"user{i}@example{i % 97}.org"
            file.write(f'{mail},"Person {i}",r-{i},{"gold" if i % 3 else "silver"}\r\n')


def _container(database_url: str, folder: Path, **overrides: Any) -> Any:
    from chalicelib.bootstrap import build_container
    from chalicelib.db import Database
    from mmms_local.local_queue import PROCESSING, RESULTS, LocalQueue, ensure_queue_table
    from tests.conftest import make_settings
    from tests.support.fake_providers import FakeProvider

    settings = make_settings(
        database_url,
        log_level="WARNING",
        campaign_upload_dir=str(folder),
        campaign_upload_url="http://127.0.0.1:8000/v1/dev/campaign-uploads",
        **overrides,
    )
    queues = {}
    if "mail_queue_url" not in overrides:
        queue_db = Database(database_url, max_size=2)
        ensure_queue_table(queue_db)
        queues = {
            "processing_queue": LocalQueue(queue_db, PROCESSING),
            "result_queue": LocalQueue(queue_db, RESULTS),
        }
    return build_container(settings, sender=FakeProvider("bench"), **queues)


def _create(services: Any, email_id: str) -> Any:
    from chalicelib.models.campaigns import CreateCampaignRequest

    request = CreateCampaignRequest(
        sender_email="news@example.com",
        subject="Hello {{name}}",
        html_template="<p>Your {{plan}} plan</p>",
        email_id=email_id,
        skip_invalid=True,
    )
    return services.campaigns.create(uuid.uuid4(), request).campaign


def run_one(database_url: str, rows: int) -> dict[str, float]:
    """One size, in this process: time and peak RSS of processing the file."""
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="mmms-bench-") as folder:
        services = _container(database_url, Path(folder))
        campaign = _create(services, f"bench-{rows}")
        path = services.upload_store.path_of(campaign.upload_key)
        write_file(path, rows)
        timings = Timings(services)
        started = time.perf_counter()
        processor = services.campaign_processor
        processor.uploaded(campaign.upload_key, time.monotonic() + 3600)
        while not processor.process(campaign.id, time.monotonic() + 3600):
            pass
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        final = services.campaigns.get(campaign.api_key_id, campaign.id)
        valid = rows - rows // INVALID_EVERY
        chunks = services.processing_queue.count()
        if final.status.value != "sending" or final.counts.get("queued") != valid:
            raise RuntimeError(f"not all rows queued: {final.status} {final.counts}")
        if chunks < valid // 10:
            raise RuntimeError(f"{chunks} chunk messages for {valid} rows")
        result = {
            "seconds": seconds,
            "validate_s": timings.validated_at - started,
            "fan_out_s": time.perf_counter() - timings.validated_at,
            "peak_rss_mib": peak,
            "chunks": chunks,
            "file_mib": path.stat().st_size / 2**20,
        }
        services.close()
    return result


class Timings:
    """When validation ended (the fan-out's first statement), read off the repository."""

    def __init__(self, services: Any) -> None:
        self.validated_at = 0.0
        repo = services.campaign_processor._repo
        finish = repo.finish_validation

        def timed(*args: Any, **kwargs: Any) -> Any:
            result = finish(*args, **kwargs)
            self.validated_at = time.perf_counter()
            return result

        repo.finish_validation = timed


def sqs_calls(database_url: str, rows: int) -> dict[str, int]:
    """Fan a campaign out to SQS on moto and consume it; count the SQS calls."""
    from chalicelib.controllers.queue_consumer import handle_processing_batch
    from chalicelib.errors import BatchIncompleteError
    from chalicelib.models.mail import ProcessingMessage
    from tests.support.moto_server import running_moto_server
    from tests.support.queues import create_queues

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.disable(logging.INFO)
    calls: Counter[str] = Counter()
    with running_moto_server() as moto, tempfile.TemporaryDirectory() as folder:
        queues = create_queues(moto)
        services = _container(
            database_url,
            Path(folder),
            mail_queue_url=queues.processing,
            mail_result_queue_url=queues.result,
            aws_endpoint_url=moto.endpoint_url,
            aws_region=moto.region,
        )
        client = services.processing_queue._client()
        client.meta.events.register(
            "provide-client-params.sqs.SendMessageBatch",
            lambda params, **_: (
                calls.update(["send"]) if params.get("QueueUrl") == queues.processing else None
            ),
        )
        campaign = _create(services, "bench-sqs")
        write_file(services.upload_store.path_of(campaign.upload_key), rows)
        services.campaign_processor.uploaded(campaign.upload_key, time.monotonic() + 3600)
        valid = rows - rows // INVALID_EVERY
        while records := queues.receive(queues.processing):
            calls["receive"] += 1
            try:
                handle_processing_batch(records, services)
            except BatchIncompleteError:
                continue
            queues.sqs.delete_message_batch(
                QueueUrl=queues.processing,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r.receipt_handle} for i, r in enumerate(records)
                ],
            )
            calls["delete"] += 1
        sent = services.campaigns.get(campaign.api_key_id, campaign.id).counts.get("sent", 0)
        if sent != valid:
            raise RuntimeError(f"{sent} of {valid} rows sent")
        chunk = json.dumps(
            {
                "mmms_campaign_chunk": {
                    "campaign_id": campaign.id,
                    "first_line": 1000,
                    "last_line": 1010,
                }
            }
        )
        content = services.deliveries.email_content(campaign.api_key_id, campaign.email_id) or {}
        recipient = ProcessingMessage.model_validate(
            {
                **content,
                "email_recipient_id": "r-1000",
                "recipient_email": "user1000@example30.org",
                "recipient_name": "Person 1000",
                "recipient_params": {"plan": "gold"},
            }
        )
        services.close()
    return {
        "rows": valid,
        "send_calls": calls["send"],
        "receive_calls": calls["receive"],
        "delete_calls": calls["delete"],
        "chunk_bytes": len(chunk),
        "recipient_bytes": len(recipient.model_dump_json()),
    }


if __name__ == "__main__":
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    main()
