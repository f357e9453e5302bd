"""Full messages through the API and the queue: recipients, both parts, attachments, names."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.providers.capture import envelope_recipients, list_captured, read_captured
from chalicelib.providers.chain import ProviderChain
from chalicelib.providers.smtp import SmtpProvider
from tests.integration.mail.conftest import Wire, mail_headers, seed_request
from tests.support.http import call
from tests.support.queues import Queues, consume_until_empty
from tests.support.smtp_server import PASSWORD, USERNAME, SmtpTestServer

PDF = b"%PDF-1.4\n" + bytes(range(256)) + b"\r\n\x00end"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(reversed(range(256)))


def full_request(**overrides: Any) -> dict[str, Any]:
    return seed_request(
        recipients=[
            {"name": "Älice Müller", "mail": "alice@example.org", "emailRecipientId": "r-1"}
        ],
        sender_name="Jöhn Dœ",
        subject="Grüße {{ name }} ✓",
        html_template="<p>Hallo <b>{{ name }}</b>, schöne Grüße.</p>",
        text_template="Hallo {{ name }},\nschöne Grüße.",
        cc=["carol@example.org"],
        bcc=["bob@example.net"],
        reply_to="help@example.com",
        attachments=[
            {
                "filename": "Rechnung März.pdf",
                "content_type": "application/pdf",
                "content": base64.b64encode(PDF).decode(),
            },
            {
                "filename": "logo.png",
                "content_type": "image/png",
                "content": base64.b64encode(PNG).decode(),
            },
        ],
        list_unsubscribe="https://example.com/unsubscribe?u=1",
        **overrides,
    )


def assert_full_message(
    message: EmailMessage, envelope: list[str], to: str = "alice@example.org"
) -> None:
    assert message["To"] == f"Älice Müller <{to}>"
    assert message["Cc"] == "carol@example.org"
    assert message["Bcc"] is None
    assert "bob@example.net" in envelope
    assert message["Reply-To"] == "help@example.com"
    assert message["From"] == "Jöhn Dœ <support@example.com>"
    assert message["Subject"] == "Grüße Älice Müller ✓"
    assert message["List-Unsubscribe"] == "<https://example.com/unsubscribe?u=1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content_type() == "multipart/mixed"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    # Line ends are CRLF on the wire (RFC 5322); the words are what matter.
    assert text.get_content().replace("\r\n", "\n") == "Hallo Älice Müller,\nschöne Grüße.\n"
    assert "Hallo <b>Älice Müller</b>, schöne Grüße." in html.get_content()
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert attachments == {"Rechnung März.pdf": PDF, "logo.png": PNG}


@pytest.fixture
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAIL_PROVIDERS", "capture")
    monkeypatch.setenv("CAPTURE_DIR", str(tmp_path / "outbox"))
    return tmp_path / "outbox"


def test_a_single_full_message_arrives_intact(
    wire: Wire, api: Client, api_key: str, outbox: Path
) -> None:
    wire()

    answer = call(api, "POST", "/v1/mail", body=full_request(), headers=mail_headers(api_key))

    assert answer.status == 200, answer.json
    assert answer.json["data"]["status"]["provider"] == "capture"
    [captured] = list_captured(outbox)
    message = read_captured(outbox, captured["id"])
    assert_full_message(message, envelope_recipients(message))


def test_bulk_full_messages_travel_through_the_queue_intact(
    wire: Wire, api: Client, api_key: str, outbox: Path, queues: Queues
) -> None:
    services = wire()
    recipients = [
        {"name": "Älice Müller", "mail": "alice@example.org", "emailRecipientId": "r-1"},
        {"name": "Älice Müller", "mail": "alice2@example.org", "emailRecipientId": "r-2"},
    ]

    answer = call(
        api,
        "POST",
        "/v1/mail",
        headers=mail_headers(api_key),
        body=full_request() | {"recipients": recipients},
    )
    assert answer.status == 202
    consume_until_empty(services, queues)

    captured = {}
    for entry in list_captured(outbox):
        message = read_captured(outbox, entry["id"])
        captured[envelope_recipients(message)[0]] = message
    assert sorted(captured) == ["alice2@example.org", "alice@example.org"]
    for to, message in captured.items():
        assert_full_message(message, envelope_recipients(message), to=to)


def test_smtp_receives_bcc_in_the_envelope_only(
    wire: Wire, api: Client, api_key: str, smtp_starttls: SmtpTestServer
) -> None:
    wire(
        sender=ProviderChain(
            [
                SmtpProvider(
                    smtp_starttls.host,
                    smtp_starttls.port,
                    username=USERNAME,
                    password=PASSWORD,
                    security="starttls",
                    ssl_context=smtp_starttls.client_context(),
                )
            ]
        )
    )

    answer = call(api, "POST", "/v1/mail", body=full_request(), headers=mail_headers(api_key))

    assert answer.status == 200, answer.json
    [received] = smtp_starttls.received
    assert sorted(received.rcpt_tos) == [
        "alice@example.org",
        "bob@example.net",
        "carol@example.org",
    ]
    assert_full_message(received.message(), received.rcpt_tos)
