"""CaptureProvider writes .eml files; list_captured/read_captured read them back."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from chalicelib.providers.capture import (
    ENVELOPE_HEADER,
    CaptureProvider,
    envelope_recipients,
    list_captured,
    read_captured,
)
from tests.support.fake_providers import PDF_BYTES, make_message, with_attachment


def test_a_sent_message_is_an_eml_file_with_its_envelope(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"

    result = CaptureProvider(outbox).send(with_attachment(make_message()))

    files = list(outbox.glob("*.eml"))
    assert [f.stem for f in files] == [result.message_id]
    assert result.provider == "capture"
    captured = read_captured(outbox, result.message_id)
    assert captured["Subject"] == "Grüße ✓"
    assert captured["Bcc"] is None
    assert ENVELOPE_HEADER in captured
    assert envelope_recipients(captured) == [
        "alice@example.org",
        "carol@example.org",
        "bob@example.net",
    ]
    attachment = next(iter(captured.iter_attachments()))
    assert attachment.get_content() == PDF_BYTES
    assert not list(outbox.glob("*.tmp"))


def test_list_captured_summarises_newest_first(tmp_path: Path) -> None:
    provider = CaptureProvider(tmp_path)
    before = datetime.now(UTC).replace(microsecond=0)
    first = provider.send(make_message(subject="first"))
    second = provider.send(make_message(subject="second"))
    after = datetime.now(UTC)

    listed = list_captured(tmp_path)

    assert [entry["id"] for entry in listed] == [second.message_id, first.message_id]
    assert listed[0]["subject"] == "second"
    assert listed[0]["from"] == "Jöhn Dœ <noreply@example.com>"
    assert listed[0]["to"] == "Älice Müller <alice@example.org>"
    assert listed[0]["file"] == f"{second.message_id}.eml"
    assert listed[0]["size"] == (tmp_path / listed[0]["file"]).stat().st_size
    assert before <= parsedate_to_datetime(listed[0]["date"]) <= after  # the Date header


def test_list_captured_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert list_captured(tmp_path / "nothing-yet") == []


@pytest.mark.parametrize(
    "capture_id",
    ["../secret", "../../etc/passwd", "/etc/passwd", "20260101T000000.000000Z-../../x", ""],
)
def test_read_captured_refuses_anything_but_a_capture_id(tmp_path: Path, capture_id: str) -> None:
    with pytest.raises(ValueError, match="not a capture id"):
        read_captured(tmp_path, capture_id)


def test_read_captured_of_an_unknown_id_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_captured(tmp_path, "20260101T000000.000000Z-0123456789abcdef")


def test_list_captured_pages_newest_first_reading_only_the_page(tmp_path: Path) -> None:
    provider = CaptureProvider(tmp_path)
    ids = [provider.send(make_message(subject=f"m{i}")).message_id for i in range(5)]
    (tmp_path / f"{ids[0]}.eml").write_bytes(b"")  # unreadable junk outside the page

    first = list_captured(tmp_path, limit=2)
    second = list_captured(tmp_path, before=first[-1]["id"], limit=2)

    assert [m["subject"] for m in first] == ["m4", "m3"]
    assert [m["subject"] for m in second] == ["m2", "m1"]
