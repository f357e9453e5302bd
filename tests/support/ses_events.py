"""AWS's documented example SES events (event publishing and identity notifications), with
the message id and recipient of a test's own send, and the events queue they arrive on.

The examples follow "Examples of event data that Amazon SES publishes to Amazon SNS" and
"Amazon SNS notification examples for Amazon SES" in the SES developer guide.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.support.moto_server import MotoServer


def _now() -> str:
    """Event times: now (AWS's examples carry 2016-2020 dates, which would sort before the
    send in a recipient's history)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _mail(message_id: str, recipient: str) -> dict[str, Any]:
    return {
        "timestamp": _now(),
        "source": "Sender Name <sender@example.com>",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
        "sendingAccountId": "123456789012",
        "messageId": message_id,
        "destination": [recipient],
        "headersTruncated": False,
        "headers": [{"name": "From", "value": "Sender Name <sender@example.com>"}],
        "commonHeaders": {"from": ["Sender Name <sender@example.com>"], "to": [recipient]},
        "tags": {"ses:configuration-set": ["ConfigSet"]},
    }


def bounce(message_id: str, recipient: str, bounce_type: str = "Permanent") -> dict[str, Any]:
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": _now(),
            "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
            "reportingMTA": "dsn; mta.example.com",
        },
        "mail": _mail(message_id, recipient),
    }


def complaint(message_id: str, recipient: str) -> dict[str, Any]:
    return {
        "eventType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": recipient}],
            "timestamp": _now(),
            "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            "complaintFeedbackType": "abuse",
            "arrivalDate": _now(),
        },
        "mail": _mail(message_id, recipient),
    }


def delivery(message_id: str, recipient: str) -> dict[str, Any]:
    return {
        "eventType": "Delivery",
        "mail": _mail(message_id, recipient),
        "delivery": {
            "timestamp": _now(),
            "processingTimeMillis": 11893,
            "recipients": [recipient],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "mta.example.com",
        },
    }


def reject(message_id: str, recipient: str) -> dict[str, Any]:
    return {
        "eventType": "Reject",
        "mail": _mail(message_id, recipient),
        "reject": {"reason": "Bad content"},
    }


def delivery_delay(message_id: str, recipient: str) -> dict[str, Any]:
    return {
        "eventType": "DeliveryDelay",
        "mail": _mail(message_id, recipient),
        "deliveryDelay": {
            "timestamp": _now(),
            "delayType": "TransientCommunicationFailure",
            "expirationTime": _now(),
            "delayedRecipients": [
                {
                    "emailAddress": recipient,
                    "status": "4.4.1",
                    "diagnosticCode": "smtp; 421 4.4.1 Unable to connect to remote host",
                }
            ],
        },
    }


def as_notification(event: dict[str, Any]) -> dict[str, Any]:
    """The same event in the identity-notification format (``notificationType``)."""
    converted = copy.deepcopy(event)
    converted["notificationType"] = converted.pop("eventType")
    return converted


@dataclass(frozen=True)
class EventsQueue:
    """An events queue subscribed to an SNS topic, as the packaged template wires them."""

    url: str
    topic_arn: str
    sqs: Any
    sns: Any

    def publish_via_sns(self, event: dict[str, Any]) -> None:
        self.sns.publish(TopicArn=self.topic_arn, Message=json.dumps(event))

    def put_raw(self, event: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps(event))


def create_events_queue(moto: MotoServer) -> EventsQueue:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=moto.endpoint_url, region_name=moto.region)
    sns = boto3.client("sns", endpoint_url=moto.endpoint_url, region_name=moto.region)
    url = sqs.create_queue(QueueName="mmms-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic = sns.create_topic(Name="mmms-ses-events")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return EventsQueue(url=url, topic_arn=topic, sqs=sqs, sns=sns)


def consume_events(services: Any, events: EventsQueue, max_rounds: int = 10) -> int:
    """Invoke the events handler as Lambda would until the events queue is empty; return the
    records handled."""
    from chalicelib.controllers.queue_consumer import handle_events_batch
    from chalicelib.errors import BatchIncompleteError
    from mmms_local.worker import sqs_receiver

    receive = sqs_receiver(events.sqs, events.url, wait_seconds=0)
    handled = 0
    for _ in range(max_rounds):
        records = receive(10)
        if not records:
            return handled
        handled += len(records)
        try:
            handle_events_batch(records, services)
        except BatchIncompleteError:
            continue
        events.sqs.delete_message_batch(
            QueueUrl=events.url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": r.receipt_handle} for i, r in enumerate(records)
            ],
        )
    raise AssertionError("the events queue did not drain")
