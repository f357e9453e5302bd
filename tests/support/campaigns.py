"""Campaign files on moto's S3 (over HTTP): a bucket, its uploads queue, and uploading."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import requests

from chalicelib.bootstrap import Container
from chalicelib.controllers.campaigns import handle_uploads_batch
from mmms_local.worker import sqs_receiver
from tests.support.moto_server import MotoServer

BUCKET = "mmms-campaign-uploads"


@dataclass(frozen=True)
class Uploads:
    bucket: str
    queue: str  # the uploads queue the bucket notifies
    s3: Any
    sqs: Any


def create_uploads(moto: MotoServer, bucket: str = BUCKET) -> Uploads:
    """The bucket, and ObjectCreated notifications from it to an uploads queue (as the
    packaged template wires them)."""
    s3 = boto3.client("s3", endpoint_url=moto.endpoint_url, region_name=moto.region)
    sqs = boto3.client("sqs", endpoint_url=moto.endpoint_url, region_name=moto.region)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": moto.region})
    queue = sqs.create_queue(QueueName="mmms-campaign-uploads-queue")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
                }
            ]
        },
    )
    return Uploads(bucket, queue, s3, sqs)


def put_file(upload: dict[str, Any], data: bytes) -> requests.Response:
    """Send the file as a client does: ``upload.method`` to ``upload.url`` with its headers."""
    return requests.request(
        upload["method"], upload["url"], data=data, headers=upload["headers"], timeout=30
    )


def notifications(uploads: Uploads) -> list[dict[str, Any]]:
    """The bodies on the uploads queue (left there)."""
    records = sqs_receiver(uploads.sqs, uploads.queue, wait_seconds=0)(10)
    for record in records:
        uploads.sqs.change_message_visibility(
            QueueUrl=uploads.queue, ReceiptHandle=record.receipt_handle, VisibilityTimeout=0
        )
    return [json.loads(r.body) for r in records]


def handle_uploads(services: Container, uploads: Uploads, rounds: int = 5) -> int:
    """Run the uploads queue's Lambda handler on what is on it, as Lambda would (one record
    per invocation, deleted when the handler returns); returns the records handled."""
    handled = 0
    for _ in range(rounds):
        records = sqs_receiver(uploads.sqs, uploads.queue, wait_seconds=0)(1)
        if not records:
            return handled
        handle_uploads_batch(records, services, remaining_seconds=60)
        uploads.sqs.delete_message(QueueUrl=uploads.queue, ReceiptHandle=records[0].receipt_handle)
        handled += 1
    return handled
