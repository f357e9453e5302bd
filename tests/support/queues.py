"""SQS queues on moto for tests, and a way to run the consumer as Lambda would."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from chalicelib.bootstrap import Container
from chalicelib.controllers.queue_consumer import handle_processing_batch
from chalicelib.errors import BatchIncompleteError
from chalicelib.queues.base import QueueRecord
from mmms_local.worker import sqs_receiver
from tests.support.moto_server import MotoServer


@dataclass(frozen=True)
class Queues:
    processing: str
    dead_letter: str
    result: str
    sqs: Any

    def receive(self, url: str, limit: int = 10) -> list[QueueRecord]:
        """Up to ``limit`` messages, as the local worker receives them (no long poll)."""
        return sqs_receiver(self.sqs, url, wait_seconds=0)(limit)

    def drain_json(self, url: str) -> list[dict[str, Any]]:
        """Every message body on ``url`` (parsed), deleting them."""
        bodies: list[dict[str, Any]] = []
        while records := self.receive(url):
            bodies += [json.loads(r.body) for r in records]
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r.receipt_handle} for i, r in enumerate(records)
                ],
            )
        return bodies

    def count(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def create_queues(moto: MotoServer, max_receives: int = 3) -> Queues:
    sqs = boto3.client("sqs", endpoint_url=moto.endpoint_url, region_name=moto.region)
    dead_letter = sqs.create_queue(QueueName="mmms-dead-letter")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    processing = sqs.create_queue(
        QueueName="mmms-processing",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
            ),
        },
    )["QueueUrl"]
    result = sqs.create_queue(QueueName="mmms-result")["QueueUrl"]
    return Queues(processing=processing, dead_letter=dead_letter, result=result, sqs=sqs)


def consume_once(services: Container, queues: Queues) -> list[QueueRecord]:
    """One Lambda invocation on up to 10 messages; returns the records it was given."""
    records = queues.receive(queues.processing)
    if records:
        try:
            handle_processing_batch(records, services)
        except BatchIncompleteError:
            pass  # Lambda would log it; the failed records stay on the queue
        else:
            # Lambda deletes the batch when the handler returns normally.
            queues.sqs.delete_message_batch(
                QueueUrl=queues.processing,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r.receipt_handle} for i, r in enumerate(records)
                ],
            )
    return records


def consume_until_empty(services: Container, queues: Queues, max_rounds: int = 20) -> int:
    """Invoke the consumer until the processing queue is empty; return the invocations."""
    for rounds in range(max_rounds):
        if not consume_once(services, queues):
            return rounds
    raise AssertionError("the processing queue did not drain")
