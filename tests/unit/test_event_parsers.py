"""The provider event parsers, field by field: what each documented payload normalises to.

The integration tests (test_ses_events.py, test_webhooks.py) check what the events do to a
recipient; these pin the normalised event itself (kind, message id, time, key, recipients,
detail), which the status history and the suppression list are built from.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from chalicelib.events import mailgun, s3, sendgrid, ses
from chalicelib.events.common import MalformedEventError, addresses, epoch_time, iso_time, text
from chalicelib.events.mailgun import SignatureError
from chalicelib.models.lifecycle import EventKind, ProviderEvent

STAMP = 1521472262.908181
AT = datetime(2018, 3, 19, 15, 11, 2, 908181, tzinfo=UTC)


def digest(prefix: str, payload: Any) -> str:
    """The documented key of an event without an id: sha256 of its canonical JSON, 40 hex."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return f"{prefix}:{hashlib.sha256(canonical.encode()).hexdigest()[:40]}"


# --- Mailgun ---------------------------------------------------------------------------


def mailgun_data(event: str, **fields: Any) -> dict[str, Any]:
    return {
        "event": event,
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": STAMP,
        "recipient": "Alice@Example.org",
        "message": {"headers": {"message-id": "<20180319.1@mg.example.com>"}},
        **fields,
    }


def mailgun_event(kind: EventKind, detail: str, **changes: Any) -> ProviderEvent:
    values: dict[str, Any] = {
        "provider": "mailgun",
        "message_id": "20180319.1@mg.example.com",
        "kind": kind,
        "at": AT,
        "event_key": "mailgun:G9Bn5sl1TC6nu79C8C0bwg",
        "recipients": ("alice@example.org",),
        "detail": detail,
        **changes,
    }
    return ProviderEvent(**values)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            mailgun_data("delivered", **{"delivery-status": {"message": "OK", "code": 250}}),
            mailgun_event(EventKind.DELIVERED, "OK"),
        ),
        (
            mailgun_data(
                "failed",
                severity="permanent",
                reason="bounce",
                **{"delivery-status": {"description": "No such user", "message": "550"}},
            ),
            mailgun_event(EventKind.BOUNCED, "No such user"),
        ),
        (
            mailgun_data("failed", severity="temporary", reason="generic"),
            mailgun_event(EventKind.SOFT_BOUNCED, "generic"),
        ),
        (
            mailgun_data("failed", reason="old"),  # no severity: temporary
            mailgun_event(EventKind.SOFT_BOUNCED, "old"),
        ),
        (mailgun_data("complained"), mailgun_event(EventKind.COMPLAINED, "complained")),
        (
            mailgun_data("rejected", reject={"reason": "blocked by a rule"}),
            mailgun_event(EventKind.REJECTED, "blocked by a rule"),
        ),
    ],
)
def test_mailgun_events_normalise(data: dict[str, Any], expected: ProviderEvent) -> None:
    assert mailgun.parse_mailgun_event({"event-data": data}) == [expected]


def test_a_mailgun_event_without_an_id_or_a_recipient_is_keyed_by_its_content() -> None:
    data = mailgun_data("delivered")
    del data["id"]
    del data["recipient"]

    [event] = mailgun.parse_mailgun_event({"event-data": data})

    assert event.event_key == digest("mailgun", data)
    assert event.recipients == ()
    assert event.detail == "delivered"


def test_a_mailgun_detail_is_cut_at_1000_characters() -> None:
    data = mailgun_data(
        "failed", severity="permanent", **{"delivery-status": {"message": "x" * 1500}}
    )

    [event] = mailgun.parse_mailgun_event({"event-data": data})

    assert event.detail == "x" * 1000


def test_a_mailgun_message_id_loses_only_its_angle_brackets() -> None:
    headers = {"headers": {"message-id": " <XQ1.2@mg.example.comX> "}}
    data = mailgun_data("delivered", recipient="", message=headers)

    [event] = mailgun.parse_mailgun_event({"event-data": data})

    assert event.message_id == "XQ1.2@mg.example.comX"
    assert event.recipients == ()  # an empty recipient names nobody


@pytest.mark.parametrize("name", ["accepted", "opened", "clicked", "unsubscribed", "stored"])
def test_mailgun_events_mmms_does_not_track_are_ignored(name: str) -> None:
    assert mailgun.parse_mailgun_event({"event-data": mailgun_data(name)}) == []


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({}, "event-data is missing"),
        ({"event-data": "delivered"}, "event-data is missing"),
        (
            {"event-data": {"event": "delivered", "message": {"headers": {}}}},
            "event-data.message.headers.message-id is missing",
        ),
        (
            {"event-data": {"event": "delivered", "message": {"headers": {"message-id": "<>"}}}},
            "event-data.message.headers.message-id is missing",
        ),
    ],
)
def test_malformed_mailgun_payloads_are_named(payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(MalformedEventError) as raised:
        mailgun.parse_mailgun_event(payload)
    assert str(raised.value) == problem


KEY = "key-0123456789"


def mailgun_signed(timestamp: str, token: str = "t" * 50) -> dict[str, Any]:
    signature = hmac.new(KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature}}


def test_a_mailgun_signature_is_accepted_within_the_window_either_side() -> None:
    now = datetime.fromtimestamp(1_700_000_000, UTC)
    for timestamp in ("1699999700", "1700000300"):
        signed = mailgun.verify_signature(mailgun_signed(timestamp), KEY, 300, now=now)
        assert signed.timestamp == timestamp


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (mailgun_signed("1699999699"), "the timestamp is 301 s old; at most 300 s"),
        (mailgun_signed("1700000301"), "the timestamp is -301 s old; at most 300 s"),
        (mailgun_signed("soon"), "the timestamp is not a number"),
        ({"signature": {"timestamp": "1"}}, "the signature block is missing or malformed"),
    ],
)
def test_a_mailgun_signature_refusal_says_why(payload: dict[str, Any], problem: str) -> None:
    now = datetime.fromtimestamp(1_700_000_000, UTC)
    with pytest.raises(SignatureError) as raised:
        mailgun.verify_signature(payload, KEY, 300, now=now)
    assert str(raised.value) == problem


def test_a_mailgun_signature_is_compared_in_lower_case_without_spaces() -> None:
    payload = mailgun_signed("1700000000")
    payload["signature"]["signature"] = f" {payload['signature']['signature'].upper()} "
    now = datetime.fromtimestamp(1_700_000_000, UTC)

    assert mailgun.verify_signature(payload, KEY, 300, now=now).timestamp == "1700000000"


# --- SendGrid --------------------------------------------------------------------------


def sendgrid_item(event: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": "Bob@Example.org",
        "timestamp": int(STAMP),
        "event": event,
        "sg_event_id": "sg-event-1",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5.0",
        **fields,
    }


def sendgrid_event(kind: EventKind, detail: str, **changes: Any) -> ProviderEvent:
    values: dict[str, Any] = {
        "provider": "sendgrid",
        "message_id": "14c5d75ce93.dfd.64b469",
        "kind": kind,
        "at": datetime.fromtimestamp(int(STAMP), UTC),
        "event_key": "sendgrid:sg-event-1",
        "recipients": ("bob@example.org",),
        "detail": detail,
        **changes,
    }
    return ProviderEvent(**values)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            sendgrid_item("delivered", response="250 OK"),
            sendgrid_event(EventKind.DELIVERED, "250 OK"),
        ),
        (
            sendgrid_item("bounce", type="bounce", reason="550 no such user", response="x"),
            sendgrid_event(EventKind.BOUNCED, "550 no such user"),
        ),
        (
            sendgrid_item("bounce", type="blocked", reason="421 try later"),
            sendgrid_event(EventKind.SOFT_BOUNCED, "421 try later"),
        ),
        (
            sendgrid_item("deferred", response="400 try again later"),
            sendgrid_event(EventKind.DELAYED, "400 try again later"),
        ),
        (
            sendgrid_item("dropped", reason="Bounced Address"),
            sendgrid_event(EventKind.REJECTED, "Bounced Address"),
        ),
        (sendgrid_item("spamreport"), sendgrid_event(EventKind.COMPLAINED, "spamreport")),
    ],
)
def test_sendgrid_events_normalise(item: dict[str, Any], expected: ProviderEvent) -> None:
    assert sendgrid.parse_sendgrid_events([item]) == [expected]


def test_a_sendgrid_event_without_ids_or_a_recipient() -> None:
    keyed = sendgrid_item("delivered", sg_message_id="plain-id")
    del keyed["sg_event_id"]
    del keyed["email"]
    no_message = sendgrid_item("dropped", reason="Invalid")
    del no_message["sg_message_id"]

    events = sendgrid.parse_sendgrid_events([keyed, no_message, sendgrid_item("open")])

    assert events == [
        sendgrid_event(
            EventKind.DELIVERED,
            "delivered",
            message_id="plain-id",
            event_key=digest("sendgrid", keyed),
            recipients=(),
        )
    ]  # an event without a message id (SendGrid never sent it) and an open are left out


@pytest.mark.parametrize("raw_id", ["", 12345, None])
def test_a_sendgrid_event_whose_message_id_is_empty_or_not_text_is_left_out(
    raw_id: object,
) -> None:
    assert sendgrid.parse_sendgrid_events([sendgrid_item("delivered", sg_message_id=raw_id)]) == []


def test_a_sendgrid_message_id_is_what_precedes_the_first_filter_part() -> None:
    item = sendgrid_item("delivered", sg_message_id="abc.filter1.filter2", email="")

    [event] = sendgrid.parse_sendgrid_events([item])

    assert event.message_id == "abc"
    assert event.recipients == ()  # an empty recipient names nobody


@pytest.mark.parametrize("name", ["processed", "open", "click", "unsubscribe", "group_resubscribe"])
def test_sendgrid_events_mmms_does_not_track_are_ignored(name: str) -> None:
    assert sendgrid.parse_sendgrid_events([sendgrid_item(name)]) == []


PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC_DER = base64.b64encode(
    PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def sendgrid_signature(timestamp: str, body: bytes) -> str:
    signature = PRIVATE.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def test_a_sendgrid_key_loads_as_base64_der_or_pem() -> None:
    pem = PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spaced = " ".join(PUBLIC_DER[i : i + 16] for i in range(0, len(PUBLIC_DER), 16))

    for value in (PUBLIC_DER, spaced, pem.decode()):
        assert (
            sendgrid.load_public_key(value).public_numbers()
            == PRIVATE.public_key().public_numbers()
        )


@pytest.mark.parametrize(
    "value",
    ["not-base64!", f"{PUBLIC_DER[:8]}*{PUBLIC_DER[8:]}"],  # a stray character is not skipped
    ids=["not base64", "a character outside base64"],
)
def test_a_sendgrid_key_that_is_not_one_is_named(value: str) -> None:
    with pytest.raises(ValueError, match=r"^SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key$"):
        sendgrid.load_public_key(value)


def test_a_sendgrid_signature_is_accepted_within_the_window_either_side() -> None:
    key = sendgrid.load_public_key(PUBLIC_DER)
    body = b'[{"event": "delivered"}]'
    now = datetime.fromtimestamp(1_700_000_000, UTC)
    for timestamp in ("1699999700", "1700000300"):
        sendgrid.verify_signature(
            key, sendgrid_signature(timestamp, body), timestamp, body, max_age_seconds=300, now=now
        )


@pytest.mark.parametrize(
    ("signature", "timestamp", "problem"),
    [
        (None, "1700000000", "the signature or timestamp header is missing"),
        ("sig", None, "the signature or timestamp header is missing"),
        ("not base64!", "1700000000", "the signature is not base64"),
        (base64.b64encode(b"junk").decode(), "1700000000", "the signature does not match"),
        ("stale", "1699999699", "the timestamp is 301 s old; at most 300 s"),
        ("stale", "1700000301", "the timestamp is -301 s old; at most 300 s"),
        ("stale", "soon", "the timestamp is not a number"),
    ],
)
def test_a_sendgrid_signature_refusal_says_why(
    signature: str | None, timestamp: str | None, problem: str
) -> None:
    key = sendgrid.load_public_key(PUBLIC_DER)
    body = b"[]"
    if signature == "stale":
        signature = sendgrid_signature(str(timestamp), body)
    now = datetime.fromtimestamp(1_700_000_000, UTC)

    with pytest.raises(SignatureError) as raised:
        sendgrid.verify_signature(key, signature, timestamp, body, max_age_seconds=300, now=now)
    assert str(raised.value) == problem


def test_a_sendgrid_signature_with_a_character_outside_base64_is_refused() -> None:
    """Not decoded leniently (which drops such characters and could then match)."""
    key = sendgrid.load_public_key(PUBLIC_DER)
    good = sendgrid_signature("1700000000", b"[]")
    now = datetime.fromtimestamp(1_700_000_000, UTC)
    sendgrid.verify_signature(key, good, "1700000000", b"[]", max_age_seconds=300, now=now)

    with pytest.raises(SignatureError) as raised:
        sendgrid.verify_signature(
            key, f"{good[:8]}*{good[8:]}", "1700000000", b"[]", max_age_seconds=300, now=now
        )
    assert str(raised.value) == "the signature is not base64"


# --- SES -------------------------------------------------------------------------------

SES_AT = "2024-05-06T07:08:09.123Z"
SES_TIME = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def ses_mail(**tags: list[str]) -> dict[str, Any]:
    return {
        "timestamp": "2024-05-06T07:00:00.000Z",
        "messageId": "0100018f-ses-id",
        "destination": ["carol@example.org"],
        "tags": {"ses:configuration-set": ["mmms"], **tags},
    }


def ses_event(
    kind: EventKind, recipients: tuple[str, ...], detail: str, **changes: Any
) -> ProviderEvent:
    values: dict[str, Any] = {
        "provider": "ses",
        "message_id": "0100018f-ses-id",
        "kind": kind,
        "at": SES_TIME,
        "event_key": "(the payload's digest)",
        "recipients": recipients,
        "detail": detail,
        **changes,
    }
    return ProviderEvent(**values)


def parsed(payload: dict[str, Any]) -> ProviderEvent:
    [event] = ses.parse_ses_message(json.dumps(payload))
    return event


SES_CASES: list[tuple[dict[str, Any], ProviderEvent]] = [
    (
        {
            "eventType": "Delivery",
            "delivery": {
                "timestamp": SES_AT,
                "recipients": ["Carol <Carol@Example.org>"],
                "smtpResponse": "250 2.6.0 Message received",
            },
        },
        ses_event(EventKind.DELIVERED, ("carol@example.org",), "250 2.6.0 Message received"),
    ),
    (
        {
            "eventType": "Complaint",
            "complaint": {
                "timestamp": SES_AT,
                "complainedRecipients": [{"emailAddress": "carol@example.org"}],
                "complaintFeedbackType": "abuse",
                "complaintSubType": None,
            },
        },
        ses_event(EventKind.COMPLAINED, ("carol@example.org",), "abuse"),
    ),
    (
        {
            "notificationType": "Complaint",
            "complaint": {
                "timestamp": SES_AT,
                "complainedRecipients": [{"emailAddress": "carol@example.org"}],
                "complaintSubType": "OnAccountSuppressionList",
            },
        },
        ses_event(EventKind.COMPLAINED, ("carol@example.org",), "OnAccountSuppressionList"),
    ),
    (
        {
            "eventType": "Complaint",
            "complaint": {"timestamp": SES_AT, "complainedRecipients": []},
        },
        ses_event(EventKind.COMPLAINED, (), "complaint"),
    ),
    (
        {"eventType": "Reject", "reject": {"reason": "Bad content"}},
        ses_event(
            EventKind.REJECTED,
            (),
            "Bad content",
            at=datetime(2024, 5, 6, 7, 0, tzinfo=UTC),  # no time of its own: the send's
        ),
    ),
    (
        {
            "eventType": "Rendering Failure",
            "failure": {"errorMessage": "Attribute 'name' is not present", "templateName": "t"},
        },
        ses_event(
            EventKind.REJECTED,
            (),
            "Attribute 'name' is not present",
            at=datetime(2024, 5, 6, 7, 0, tzinfo=UTC),
        ),
    ),
    (
        {"eventType": "Reject", "reject": {}},
        ses_event(
            EventKind.REJECTED, (), "rejected by SES", at=datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
        ),
    ),
    (
        {
            "eventType": "DeliveryDelay",
            "deliveryDelay": {
                "timestamp": SES_AT,
                "delayType": "TransientCommunicationFailure",
                "delayedRecipients": [{"emailAddress": "Carol@example.org", "status": "4.4.1"}],
            },
        },
        ses_event(EventKind.DELAYED, ("carol@example.org",), "TransientCommunicationFailure"),
    ),
    (
        {
            "eventType": "AutoReply",
            "autoReply": {
                "timestamp": SES_AT,
                "recipients": ["carol@example.org"],
                "detail": "Away until Monday",
            },
        },
        ses_event(EventKind.AUTO_REPLY, ("carol@example.org",), "Away until Monday"),
    ),
    (
        {
            "eventType": "AutoReply",
            "autoReply": {"timestamp": SES_AT, "recipients": ["carol@example.org"]},
        },
        ses_event(EventKind.AUTO_REPLY, ("carol@example.org",), "out-of-office auto-reply"),
    ),
    (
        {
            "eventType": "Bounce",
            "bounce": {
                "timestamp": SES_AT,
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {"emailAddress": "carol@example.org", "diagnosticCode": "smtp; 550 5.1.1"}
                ],
            },
        },
        ses_event(EventKind.BOUNCED, ("carol@example.org",), "Permanent/General: smtp; 550 5.1.1"),
    ),
    (
        {
            "eventType": "Bounce",
            "bounce": {
                "timestamp": SES_AT,
                "bounceType": "Transient",
                "bounceSubType": "MailboxFull",
                "bouncedRecipients": [{"emailAddress": "carol@example.org", "status": "4.2.2"}],
            },
        },
        ses_event(EventKind.SOFT_BOUNCED, ("carol@example.org",), "Transient/MailboxFull: 4.2.2"),
    ),
    (
        {"eventType": "Bounce", "bounce": {"timestamp": SES_AT}},
        ses_event(EventKind.SOFT_BOUNCED, (), "Undetermined/General"),
    ),
    (
        {
            "eventType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bouncedRecipients": [], "timestamp": SES_AT},
        },
        ses_event(EventKind.BOUNCED, (), "Permanent/General"),
    ),
]


@pytest.mark.parametrize(("payload", "expected"), SES_CASES)
def test_ses_events_normalise(payload: dict[str, Any], expected: ProviderEvent) -> None:
    payload = {**payload, "mail": ses_mail()}
    kind = payload.get("eventType") or payload.get("notificationType")

    event = parsed(payload)

    assert event == dataclasses.replace(expected, event_key=digest(f"ses:{kind}", payload))


def test_an_ses_event_arrives_the_same_through_sns_or_raw() -> None:
    payload = {**SES_CASES[0][0], "mail": ses_mail()}
    envelope = {"Type": "Notification", "MessageId": "sns-1", "Message": json.dumps(payload)}

    assert ses.parse_ses_message(json.dumps(envelope)) == ses.parse_ses_message(json.dumps(payload))


def test_events_the_simulator_made_name_it_as_their_provider() -> None:
    payload = {**SES_CASES[0][0], "mail": ses_mail(**{"mmms:simulated": ["true"]})}

    assert parsed(payload).provider == "simulator"


@pytest.mark.parametrize(
    "kind", ["Send", "Open", "Click", "Subscription", "AmazonSnsSubscriptionSucceeded", "Other"]
)
def test_ses_events_mmms_does_not_track_are_ignored(kind: str) -> None:
    body = json.dumps({"eventType": kind, "mail": ses_mail()})
    assert ses.parse_ses_message(body) == []


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_sns_confirmations_are_ignored(kind: str) -> None:
    assert ses.parse_ses_message(json.dumps({"Type": kind, "Message": "not json"})) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{", "not JSON"),
        ("[1]", "not a JSON object"),
        (json.dumps({"Type": "Notification", "Message": "{"}), "SNS Message is not JSON"),
        (
            json.dumps({"Type": "Notification", "Message": "[1]"}),
            "SNS Message is not a JSON object",
        ),
        (json.dumps({"mail": ses_mail()}), "neither eventType nor notificationType"),
        (json.dumps({"eventType": "Delivery", "mail": {}}), "mail.messageId is missing"),
        (
            json.dumps({"eventType": "Delivery", "mail": {"messageId": ""}}),
            "mail.messageId is missing",
        ),
        (
            json.dumps({"eventType": "Delivery", "mail": {"messageId": 7}}),
            "mail.messageId is missing",
        ),
    ],
)
def test_malformed_ses_messages_are_named(body: str, problem: str) -> None:
    with pytest.raises(MalformedEventError) as raised:
        ses.parse_ses_message(body)
    assert str(raised.value) == problem


# --- Shared helpers --------------------------------------------------------------------


def test_recipient_addresses_are_bare_lower_case_and_never_empty() -> None:
    entries = [
        {"emailAddress": '"Sales <Team>" <Jo@Example.org>'},  # the last <...> is the address
        {"emailAddress": "Ann@Example.org>"},  # not a display form: kept as it is
        {"emailAddress": "Name <Bo@Example.org"},
        {"emailAddress": ""},
        {"emailAddress": 7},
        " Cy@Example.org ",
        "",
    ]

    assert addresses(entries) == (
        "jo@example.org",
        "ann@example.org>",
        "name <bo@example.org",
        "cy@example.org",
    )


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), (0, "0"), ("x", "x")])
def test_an_empty_detail_is_none(value: object, expected: str | None) -> None:
    assert text(value) == expected


def test_a_sendgrid_key_of_another_kind_is_named() -> None:
    other = base64.b64encode(
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()

    with pytest.raises(
        ValueError, match=r"^SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve key$"
    ):
        sendgrid.load_public_key(other)


# --- Timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [STAMP, int(STAMP), str(STAMP)])
def test_epoch_times_take_numbers_and_numeric_strings(value: object) -> None:
    assert epoch_time(value) == datetime.fromtimestamp(float(str(value)), UTC)


@pytest.mark.parametrize("value", [None, "soon", 1e300, [1]])
def test_a_missing_or_impossible_epoch_time_is_now(value: object) -> None:
    before = datetime.now(UTC)
    assert before <= epoch_time(value) <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (SES_AT, SES_TIME),
        ("2024-05-06T07:08:09", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06T09:08:09+02:00", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
    ],
)
def test_iso_times_are_read_in_utc(value: str, expected: datetime) -> None:
    assert iso_time(value) == expected


@pytest.mark.parametrize("value", [None, "yesterday", 5])
def test_a_missing_or_invalid_iso_time_is_now(value: object) -> None:
    before = datetime.now(UTC)
    assert before <= iso_time(value) <= datetime.now(UTC)


# --- S3 (campaign uploads) --------------------------------------------------------------


def s3_record(
    event_name: str, key: str | None, size: object = 1024, bucket: str | None = "uploads"
) -> dict[str, Any]:
    """One record of S3's documented event message structure (fields MMMS does not read cut)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event_name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}},
    }


def test_an_s3_notification_reports_each_object_created_with_its_key_decoded() -> None:
    body = json.dumps(
        {
            "Records": [
                s3_record("ObjectCreated:Put", "uploads/camp+1%2Fmarch%C3%A9.csv", 2048),
                s3_record("ObjectRemoved:Delete", "uploads/old.csv"),
                s3_record("ObjectCreated:CompleteMultipartUpload", "uploads/b.jsonl", "big", "b2"),
            ]
        }
    )

    assert s3.parse_s3_notification(body) == [
        s3.ObjectCreated("uploads", "uploads/camp 1/march\u00e9.csv", 2048),
        s3.ObjectCreated("b2", "uploads/b.jsonl", None),  # a size that is not a number: unknown
    ]


def test_s3s_test_event_names_no_object() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "uploads"})

    assert s3.parse_s3_notification(body) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "an S3 notification is JSON"),
        ("[]", "an S3 notification is a JSON object"),
        ('{"Event": "s3:ObjectCreated:Put"}', "an S3 notification has Records"),
        ('{"Records": {}}', "an S3 notification has Records"),
        (
            json.dumps({"Records": [s3_record("ObjectCreated:Put", "k", bucket=None)]}),
            "an ObjectCreated record names a bucket and a key",
        ),
        (
            json.dumps({"Records": [s3_record("ObjectCreated:Put", None)]}),
            "an ObjectCreated record names a bucket and a key",
        ),
    ],
)
def test_an_s3_notification_not_of_the_documented_shape_is_malformed(
    body: str, reason: str
) -> None:
    with pytest.raises(MalformedEventError) as raised:
        s3.parse_s3_notification(body)

    assert str(raised.value) == reason
