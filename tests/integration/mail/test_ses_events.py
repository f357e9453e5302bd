"""SES events (SNS → SQS → the events handler) change the right recipient, once, in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from tests.integration.mail.conftest import Wire, mail_headers, seed_request, three_recipients
from tests.support import ses_events
from tests.support.http import ADMIN_HEADERS, call
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues, consume_until_empty
from tests.support.ses_events import EventsQueue, consume_events, create_events_queue

RECIPIENT = "john@example.com"


@pytest.fixture
def events(moto: MotoServer, queues: Queues) -> EventsQueue:
    return create_events_queue(moto)


@pytest.fixture
def sent(wire: Wire, api: Client, api_key: str, events: EventsQueue) -> dict[str, Any]:
    """One email sent through SES (moto), with the events queue configured."""
    wire(mail_events_queue_url=events.url)
    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))
    assert answer.status == 200, answer.json
    data: dict[str, Any] = answer.json["data"]
    return data


def lookup(api: Client, key: str) -> dict[str, Any]:
    answer = call(
        api, "GET", "/v1/mail/msg-123/recipients/recipient-123", headers=mail_headers(key)
    )
    assert answer.status == 200, answer.json
    data: dict[str, Any] = answer.json["data"]
    return data


def suppressed(database: str) -> dict[str, str]:
    with psycopg.connect(database) as conn:
        return dict(conn.execute("SELECT address, reason FROM suppressions").fetchall())


Event = Callable[[str, str], dict[str, Any]]
CASES: list[tuple[str, Event, str, str, dict[str, str]]] = [
    ("delivery", ses_events.delivery, "delivered", "delivered", {}),
    ("bounce", ses_events.bounce, "bounced", "bounced", {RECIPIENT: "bounce"}),
    (
        "transient bounce",
        lambda m, r: ses_events.bounce(m, r, "Transient"),
        "sent",
        "soft_bounced",
        {},
    ),
    ("complaint", ses_events.complaint, "complained", "complained", {RECIPIENT: "complaint"}),
    ("reject", ses_events.reject, "failed", "rejected", {}),
    ("delivery delay", ses_events.delivery_delay, "sent", "delayed", {}),
    (
        "bounce notification",
        lambda m, r: ses_events.as_notification(ses_events.bounce(m, r)),
        "bounced",
        "bounced",
        {RECIPIENT: "bounce"},
    ),
]


@pytest.mark.parametrize("wrapping", ["sns", "raw"])
@pytest.mark.parametrize(
    ("name", "event", "status", "event_type", "suppressions"), CASES, ids=[c[0] for c in CASES]
)
def test_each_documented_event_changes_the_right_recipient(
    wire: Wire,
    api: Client,
    api_key: str,
    events: EventsQueue,
    queues: Queues,
    sent: dict[str, Any],
    clean_database: str,
    wrapping: str,
    name: str,
    event: Event,
    status: str,
    event_type: str,
    suppressions: dict[str, str],
) -> None:
    services = wire(mail_events_queue_url=events.url)
    queues.drain_json(queues.result)
    body = event(sent["message_id"], RECIPIENT)
    if wrapping == "sns":
        events.publish_via_sns(body)
    else:
        events.put_raw(body)

    assert consume_events(services, events) == 1

    data = lookup(api, api_key)
    assert data["status"] == status
    assert [e["type"] for e in data["events"]] == ["queued", "sent", event_type]
    assert suppressed(clean_database) == suppressions
    reports = queues.drain_json(queues.result)
    assert [r["status"] for r in reports] == ([status] if status != "sent" else [])
    assert (
        events.sqs.get_queue_attributes(
            QueueUrl=events.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )


def test_a_duplicate_event_changes_nothing(
    wire: Wire, api: Client, api_key: str, events: EventsQueue, queues: Queues, sent: dict[str, Any]
) -> None:
    services = wire(mail_events_queue_url=events.url)
    queues.drain_json(queues.result)
    body = ses_events.bounce(sent["message_id"], RECIPIENT)
    events.publish_via_sns(body)
    events.publish_via_sns(body)

    consume_events(services, events)

    data = lookup(api, api_key)
    assert data["status"] == "bounced"
    assert [e["type"] for e in data["events"]].count("bounced") == 1
    assert [r["status"] for r in queues.drain_json(queues.result)] == ["bounced"]


def test_a_late_delivery_never_overwrites_a_bounce_or_a_complaint(
    wire: Wire, api: Client, api_key: str, events: EventsQueue, queues: Queues, sent: dict[str, Any]
) -> None:
    services = wire(mail_events_queue_url=events.url)
    queues.drain_json(queues.result)
    events.put_raw(ses_events.complaint(sent["message_id"], RECIPIENT))
    consume_events(services, events)
    events.put_raw(ses_events.delivery(sent["message_id"], RECIPIENT))
    events.put_raw(ses_events.bounce(sent["message_id"], RECIPIENT))
    consume_events(services, events)

    data = lookup(api, api_key)
    assert data["status"] == "complained"
    assert {"complained", "delivered", "bounced"} <= {e["type"] for e in data["events"]}
    assert [r["status"] for r in queues.drain_json(queues.result)] == ["complained"]


def test_an_unknown_message_id_and_a_malformed_message_are_acknowledged(
    wire: Wire, api: Client, api_key: str, events: EventsQueue, sent: dict[str, Any]
) -> None:
    services = wire(mail_events_queue_url=events.url)
    events.put_raw(ses_events.bounce("not-a-message-we-sent", RECIPIENT))
    events.sqs.send_message(QueueUrl=events.url, MessageBody="{not json")
    events.sqs.send_message(QueueUrl=events.url, MessageBody='{"eventType": "Bounce"}')

    consume_events(services, events)

    # Acknowledged means deleted: nothing left visible, in flight or delayed for a retry.
    attributes = events.sqs.get_queue_attributes(
        QueueUrl=events.url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    assert set(attributes.values()) == {"0"}
    assert lookup(api, api_key)["status"] == "sent"


def test_a_hard_bounce_suppresses_the_next_sends_without_a_provider_call(
    wire: Wire,
    api: Client,
    api_key: str,
    events: EventsQueue,
    queues: Queues,
    moto: MotoServer,
    sent: dict[str, Any],
    clean_database: str,
) -> None:
    services = wire(mail_events_queue_url=events.url)
    events.publish_via_sns(ses_events.bounce(sent["message_id"], RECIPIENT))
    consume_events(services, events)
    queues.drain_json(queues.result)
    sent_before = len(moto.ses_sent_messages())
    with psycopg.connect(clean_database) as conn:
        listed = conn.execute("SELECT address, reason, email_id, detail FROM suppressions")
        # The entry says which email bounced and what the receiving server answered.
        assert listed.fetchall() == [
            (
                "john@example.com",
                "bounce",
                "msg-123",
                "Permanent/General: smtp; 550 5.1.1 user unknown",
            )
        ]

    single = call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(
            email_id="msg-2", recipients=[{"mail": "John@Example.com", "emailRecipientId": "x"}]
        ),
        headers=mail_headers(api_key),
    )
    recipients = [*three_recipients(), {"mail": RECIPIENT.upper(), "emailRecipientId": "r-4"}]
    bulk = call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(email_id="msg-3", recipients=recipients),
        headers=mail_headers(api_key),
    )
    consume_until_empty(services, queues)

    assert single.status == 400
    assert single.json["error_type"] == "business_error"
    assert "suppression list" in single.json["message"]
    assert single.json["details"]["status"] == "suppressed"
    assert bulk.status == 202
    by_id = {r["email_recipient_id"]: r["status"] for r in bulk.json["data"]["recipients"]}
    assert by_id == {"r-1": "queued", "r-2": "queued", "r-3": "queued", "r-4": "suppressed"}
    assert len(moto.ses_sent_messages()) == sent_before + 3
    reports = {
        (r["email_id"], r["email_recipient_id"]): r for r in queues.drain_json(queues.result)
    }
    assert reports[("msg-2", "x")]["status"] == "suppressed"
    assert reports[("msg-2", "x")]["success"] is False
    assert reports[("msg-3", "r-4")]["status"] == "suppressed"
    assert {reports[("msg-3", rid)]["status"] for rid in ("r-1", "r-2", "r-3")} == {"sent"}
    removed = call(api, "DELETE", f"/v1/suppressions/{RECIPIENT}", headers=ADMIN_HEADERS)
    assert removed.status == 200
    again = call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(email_id="msg-4"),
        headers=mail_headers(api_key),
    )
    assert again.status == 200
    assert len(moto.ses_sent_messages()) == sent_before + 4


def test_a_recipient_listed_after_it_was_queued_is_not_sent(
    wire: Wire, api: Client, api_key: str, queues: Queues, moto: MotoServer
) -> None:
    services = wire()
    answer = call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(recipients=three_recipients()),
        headers=mail_headers(api_key),
    )
    assert answer.status == 202
    listed = call(
        api,
        "POST",
        "/v1/suppressions",
        body={"addresses": ["BOB@example.org"]},
        headers=ADMIN_HEADERS,
    )
    assert listed.status == 200

    consume_until_empty(services, queues)

    destinations = sorted(m.destinations["ToAddresses"][0] for m in moto.ses_sent_messages())
    assert destinations == ["Alice <alice@example.org>", "Carol <carol@example.org>"]
    page = call(api, "GET", "/v1/mail/msg-123?status=suppressed", headers=mail_headers(api_key))
    assert [r["recipient"] for r in page.json["data"]["recipients"]] == ["bob@example.org"]
