"""Building a recipient's email and its row (``services/messages.py``), purely: the row a job
records, the content an email's recipients share and a job rebuilt from it, the rendered
message with every field a provider sends, its Message-ID, a receipt's body, and what a row
looks like to a client and on the result queue."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.models.mail import DeliveryState, ProcessingMessage
from chalicelib.providers.base import Address, Attachment, SendResult
from chalicelib.repositories.delivery_rows import Delivery, NewDelivery
from chalicelib.services.messages import (
    api_key_uuid,
    compiled_templates,
    email_content,
    job_from_content,
    job_key,
    new_delivery,
    receipt_body,
    render_message,
    result_of,
    status_of,
    unsubscribe_headers,
    with_message_id,
)
from chalicelib.services.render_budget import RenderBudget, RenderLimitError, RenderMeter
from chalicelib.services.templates import TemplateLimitError

KEY = uuid.UUID("33333333-3333-3333-3333-333333333333")
QUEUED_AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SENT_AT = datetime(2026, 11, 30, 9, 0, 5, tzinfo=UTC)
PDF = b"%PDF-1.4\x00\xff binary"


def job(**overrides: Any) -> ProcessingMessage:
    """A processing message with every field set (override any)."""
    fields: dict[str, Any] = {
        "email_id": "news-7",
        "email_recipient_id": "rcp-1",
        "client_env_id": "env-9",
        "sender_email": "team@mail.example.com",
        "sender_name": "The Team",
        "sender_organisation_name": "Example Org",
        "subject": "Hi {{name}} of {{company}}",
        "html_template": (
            "<p>{{name}}|{{mail}}|{{company}}|{{emailRecipientId}}|{{sender_name}}"
            "|{{sender_email}}|{{sender_organisation_name}}|{{colour}}|{{size}}</p>"
        ),
        "text_template": "Text for {{name}}: {{colour}}",
        "recipient_name": "Ann Lee",
        "recipient_email": "Ann@Example.org",
        "recipient_company": "Lee & Co",
        "queued_at": QUEUED_AT,
        "cc": ["cc1@example.org", "cc2@example.org"],
        "bcc": ["bcc@example.org"],
        "reply_to": "replies@example.com",
        "attachments": [
            {
                "filename": "report.pdf",
                "content_type": "application/pdf",
                "content": base64.b64encode(PDF).decode(),
            }
        ],
        "metadata": {"batch": "b-1"},
        "list_unsubscribe": "https://example.com/unsubscribe?u=1",
        "projectId": "project-1",
        "closureId": "closure-1",
        "api_key_id": str(KEY),
        "template_id": "tpl-1",
        "template_version": 3,
        "params": {"colour": "blue", "size": "M"},
        "recipient_params": {"colour": "red"},
    }
    fields.update(overrides)
    return ProcessingMessage.model_validate(fields)


def row(**overrides: Any) -> Delivery:
    """A recipient row with every field set (override any)."""
    fields: dict[str, Any] = {
        "id": uuid.UUID("44444444-4444-4444-4444-444444444444"),
        "api_key_id": KEY,
        "email_id": "news-7",
        "email_recipient_id": "rcp-2",
        "recipient": "bo@example.org",
        "recipient_name": "Bo",
        "recipient_company": "Bo Ltd",
        "status": DeliveryState.SENT,
        "provider": "ses",
        "message_id": "ses-42",
        "attempts": 2,
        "last_error": "ses: throttled",
        "status_detail": "accepted",
        "client_env_id": "env-9",
        "project_id": "project-1",
        "closure_id": "closure-1",
        "metadata": {"batch": "b-1"},
        "result_pending": True,
        "queued_at": QUEUED_AT,
        "sent_at": SENT_AT,
        "dispatched_at": QUEUED_AT,
        "lease_token": None,
        "recipient_params": {"colour": "green"},
    }
    fields.update(overrides)
    return Delivery(**fields)


def test_a_jobs_row_carries_its_recipient_and_the_emails_pass_through_fields() -> None:
    assert new_delivery(job()) == NewDelivery(
        email_id="news-7",
        email_recipient_id="rcp-1",
        recipient="Ann@example.org",
        client_env_id="env-9",
        project_id="project-1",
        closure_id="closure-1",
        metadata={"batch": "b-1"},
        recipient_name="Ann Lee",
        recipient_company="Lee & Co",
        queued_at=QUEUED_AT,
        dispatched=False,
        test_mode=False,
        suppressed=None,
        template_id="tpl-1",
        template_version=3,
        recipient_params={"colour": "red"},
    )
    flagged = new_delivery(job(), dispatched=True, test_mode=True, suppressed="bounced")
    assert (flagged.dispatched, flagged.test_mode, flagged.suppressed) == (True, True, "bounced")


def test_a_jobs_key_is_its_api_key_email_and_recipient_id() -> None:
    assert job_key(job()) == (KEY, "news-7", "rcp-1")
    # Without a recipient id, the address (lower-cased) is the id; without a key, None.
    assert job_key(job(email_recipient_id=None, api_key_id=None)) == (
        None,
        "news-7",
        "ann@example.org",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(str(KEY), KEY), (None, None), ("", None), ("not-a-uuid", None)],
)
def test_an_api_key_id_that_is_not_a_uuid_is_no_key(
    value: str | None, expected: uuid.UUID | None
) -> None:
    assert api_key_uuid(value) == expected


def test_the_shared_content_leaves_out_exactly_the_recipients_fields() -> None:
    content = email_content(job())

    assert content == job().model_dump(
        mode="json",
        exclude={
            "email_recipient_id",
            "recipient_name",
            "recipient_email",
            "recipient_company",
            "recipient_params",
            "queued_at",
        },
    )
    assert content["params"] == {"colour": "blue", "size": "M"}
    assert content["subject"] == "Hi {{name}} of {{company}}"


def test_a_job_is_rebuilt_from_the_shared_content_and_a_recipients_row() -> None:
    rebuilt = job_from_content(email_content(job()), row())

    assert rebuilt == job(
        email_recipient_id="rcp-2",
        recipient_email="bo@example.org",
        recipient_name="Bo",
        recipient_company="Bo Ltd",
        recipient_params={"colour": "green"},
        queued_at=QUEUED_AT,
    )
    bare = job_from_content(email_content(job()), row(recipient_params=None))
    assert bare.recipient_params == {}


def test_a_receipt_names_the_row_the_provider_and_its_message_id() -> None:
    delivery_id = uuid.UUID("55555555-5555-5555-5555-555555555555")

    body = json.loads(receipt_body(delivery_id, SendResult("ses", "ses-9")))

    # Receipts wait on the processing queue across deploys: their shape is a wire format.
    assert body == {
        "mmms_receipt": {
            "delivery_id": "55555555-5555-5555-5555-555555555555",
            "provider": "ses",
            "message_id": "ses-9",
        }
    }


def test_a_rendered_message_has_every_field_a_provider_sends() -> None:
    message = render_message(job())

    assert message.sender == Address("team@mail.example.com", "The Team")
    assert message.to == (Address("Ann@example.org", "Ann Lee"),)
    assert message.subject == "Hi Ann Lee of Lee & Co"
    # Every built-in placeholder, the recipient's param over the email's, the email's own.
    assert message.html == (
        "<p>Ann Lee|Ann@example.org|Lee &amp; Co|rcp-1|The Team"
        "|team@mail.example.com|Example Org|red|M</p>"
    )
    assert message.text == "Text for Ann Lee: red"
    assert message.cc == (Address("cc1@example.org"), Address("cc2@example.org"))
    assert message.bcc == (Address("bcc@example.org"),)
    assert message.reply_to == (Address("replies@example.com"),)
    assert message.attachments == (Attachment("report.pdf", "application/pdf", PDF),)
    assert message.headers == {
        "List-Unsubscribe": "<https://example.com/unsubscribe?u=1>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert message.tags == {
        "email_id": "news-7",
        "email_recipient_id": "rcp-1",
        "client_env_id": "env-9",
    }
    assert message.message_id is None  # the row gives it (with_message_id)


def test_a_plain_message_has_no_extras_and_its_text_comes_from_the_html() -> None:
    message = render_message(
        job(
            email_recipient_id=None,
            client_env_id=None,
            text_template=None,
            html_template="<p>Hello {{name}}</p>",
            cc=[],
            bcc=[],
            reply_to=None,
            attachments=[],
            list_unsubscribe=None,
        )
    )

    assert message.text == "Hello Ann Lee\n"
    assert (message.cc, message.bcc, message.reply_to, message.attachments) == ((), (), (), ())
    assert message.headers == {}
    assert message.tags == {"email_id": "news-7", "email_recipient_id": "ann@example.org"}


def test_rendering_spends_the_meter_it_is_given() -> None:
    tiny = RenderMeter(RenderBudget(max_message_bytes=10))

    with pytest.raises(TemplateLimitError) as caught:
        render_message(job(), tiny)

    assert isinstance(caught.value.__cause__, RenderLimitError)
    assert caught.value.__cause__.setting == "MAX_MESSAGE_BYTES"


def test_an_emails_templates_are_compiled_once() -> None:
    first = compiled_templates("S {{name}}", "<p>{{name}}</p>", None)

    assert compiled_templates("S {{name}}", "<p>{{name}}</p>", None) is first
    assert compiled_templates("S {{name}}", "<p>{{name}}</p>", "t") is not first


def test_the_message_id_is_the_rows_id_at_the_senders_domain() -> None:
    message = render_message(job())

    stamped = with_message_id(message, job(), row())

    assert stamped.message_id == "<44444444-4444-4444-4444-444444444444@mail.example.com>"
    assert stamped.subject == message.subject  # nothing else changes


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, {}),
        ("", {}),
        ("mailto:off@example.com", {"List-Unsubscribe": "<mailto:off@example.com>"}),
        ("http://example.com/off", {"List-Unsubscribe": "<http://example.com/off>"}),
        (
            "https://example.com/off",
            {
                "List-Unsubscribe": "<https://example.com/off>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        ),
    ],
)
def test_one_click_unsubscribe_is_offered_only_for_https(
    target: str | None, expected: dict[str, str]
) -> None:
    assert unsubscribe_headers(target) == expected


def test_a_rows_status_is_what_a_client_reads() -> None:
    status = status_of(row())

    assert status.model_dump() == {
        "email_id": "news-7",
        "email_recipient_id": "rcp-2",
        "recipient": "bo@example.org",
        "status": DeliveryState.SENT,
        "message_id": "ses-42",
        "status_detail": "accepted",
        "last_error": "ses: throttled",
        "queued_at": QUEUED_AT,
        "sent_at": SENT_AT,
        "provider": "ses",
    }


@pytest.mark.parametrize(
    ("state", "success"),
    [(DeliveryState.DELIVERED, True), (DeliveryState.BOUNCED, False)],
)
def test_a_rows_report_carries_its_status_and_pass_through_fields(
    state: DeliveryState, success: bool
) -> None:
    report = result_of(row(status=state))

    assert report.model_dump() == {
        "success": success,
        "email_id": "news-7",
        "email_recipient_id": "rcp-2",
        "recipient": "bo@example.org",
        "status": state,
        "result": status_of(row(status=state)).model_dump(),
        "client_env_id": "env-9",
        "projectId": "project-1",
        "closureId": "closure-1",
        "metadata": {"batch": "b-1"},
    }
