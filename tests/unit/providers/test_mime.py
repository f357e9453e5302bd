"""build_mime: structure, headers and encodings, read back with the stdlib parser."""

from __future__ import annotations

from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from chalicelib.providers.base import Address, Attachment
from chalicelib.providers.mime import build_mime
from tests.support.fake_providers import PDF_BYTES, make_message, with_attachment


def parse(data: bytes) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_headers_survive_a_round_trip_with_non_ascii_names_and_subject() -> None:
    raw = build_mime(make_message(message_id="<fixed-id@example.com>")).as_bytes()
    parsed = parse(raw)

    assert raw.isascii()
    assert parsed["Subject"] == "Grüße ✓"
    sender = parsed["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Jöhn Dœ", "noreply@example.com")
    assert [(a.display_name, a.addr_spec) for a in parsed["To"].addresses] == [
        ("Älice Müller", "alice@example.org")
    ]
    assert [a.addr_spec for a in parsed["Cc"].addresses] == ["carol@example.org"]
    assert [a.addr_spec for a in parsed["Reply-To"].addresses] == ["support@example.com"]
    assert parsed["Message-ID"] == "<fixed-id@example.com>"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Date"].datetime is not None
    assert parsed["List-Unsubscribe"] == "<mailto:unsubscribe@example.com>"


def test_bcc_recipients_are_never_in_the_headers() -> None:
    raw = build_mime(make_message()).as_bytes()

    assert parse(raw)["Bcc"] is None
    assert b"bob@example.net" not in raw


def test_text_and_html_are_alternatives() -> None:
    parsed = parse(build_mime(make_message()).as_bytes())

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().splitlines() == ["Hallo Älice,", "schöne Grüße."]
    assert "<b>Älice</b>" in parts[1].get_content()


def test_attachments_wrap_the_alternative_in_mixed_and_stay_byte_identical() -> None:
    parsed = parse(build_mime(with_attachment(make_message())).as_bytes())

    assert parsed.get_content_type() == "multipart/mixed"
    body, attachment = list(parsed.iter_parts())
    assert body.get_content_type() == "multipart/alternative"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "Rechnung März.pdf"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_content() == PDF_BYTES


def test_a_fresh_message_id_uses_the_sender_domain() -> None:
    parsed = parse(build_mime(make_message(message_id=None)).as_bytes())

    assert parsed["Message-ID"].endswith("@example.com>")


def test_html_only_message_is_a_single_part() -> None:
    parsed = parse(build_mime(make_message(text="")).as_bytes())

    assert parsed.get_content_type() == "text/html"


def test_an_unusable_attachment_type_is_sent_as_octet_stream() -> None:
    message = replace(make_message(), attachments=(Attachment("x.bin", "nonsense", b"\x00\x01"),))
    attachment = list(parse(build_mime(message).as_bytes()).iter_parts())[1]

    assert attachment.get_content_type() == "application/octet-stream"
    assert attachment.get_content() == b"\x00\x01"


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hello\r\nBcc: victim@example.com"},
        {"subject": "Hello\nX-Injected: yes"},
        {"sender": Address("noreply@example.com", "Evil\r\nBcc: victim@example.com")},
        {"to": (Address("alice@example.org\r\nBcc: victim@example.com"),)},
        {"headers": {"List-Unsubscribe": "<mailto:u@example.com>\r\nBcc: v@example.com"}},
        {"headers": {"X-Bad\r\nName": "value"}},
        {"message_id": "<id@example.com>\r\nBcc: victim@example.com"},
    ],
)
def test_cr_or_lf_in_a_header_value_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"CR or LF|invalid header name"):
        build_mime(make_message(**overrides))


def test_extra_headers_cannot_replace_the_ones_mmms_writes() -> None:
    with pytest.raises(ValueError, match="cannot be overridden"):
        build_mime(make_message(headers={"Bcc": "victim@example.com"}))
