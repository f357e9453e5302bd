"""A provider that sends nothing: it keeps every message as an ``.eml`` file (local runs).

Files: ``<directory>/<UTC timestamp>-<random hex>.eml``, e.g.
``20260123T101112.123456Z-3f2a9c0d1e4b5a69.eml``. The stem is the capture id (also the
``SendResult.message_id``); names sort by capture time. Each file is written to a temporary
name and renamed (``os.replace``), so a reader never sees half a message.

The file is exactly :func:`~chalicelib.providers.mime.build_mime`'s message plus one header,
``X-MMMS-Envelope-To``, listing every envelope recipient (To, Cc and Bcc). Each send also
produces the events the SES mailbox simulator would (``providers/simulator.py``: normal
addresses are delivered), so ``make run`` shows the whole lifecycle. Bcc recipients are
recoverable from it although the message has no Bcc header; the header exists only in
captured files, never in mail that leaves through a real provider.

:func:`list_captured` (paged), :func:`read_captured`, :func:`captured_bytes` and
:func:`envelope_recipients` are the read
side (the local "outbox" page).
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from chalicelib.errors import MessageRejectedError, ProviderUnavailableError
from chalicelib.providers.base import Address, OutgoingMessage, SendResult
from chalicelib.providers.mime import address_header, build_mime
from chalicelib.providers.simulator import simulated_events

ENVELOPE_HEADER = "X-MMMS-Envelope-To"
_CAPTURE_ID = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{16}$")


class CaptureProvider:
    """Writes each message into ``directory`` (created if missing) instead of sending it."""

    def __init__(self, directory: Path, name: str = "capture") -> None:
        self.name = name
        self.directory = Path(directory)

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            mime = build_mime(message)
            envelope = [Address(a.email) for a in message.all_recipients]
            mime[ENVELOPE_HEADER] = address_header(envelope)
        except ValueError as err:
            raise MessageRejectedError(self.name, f"invalid message: {err}") from err
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        capture_id = f"{stamp}-{secrets.token_hex(8)}"
        target = self.directory / f"{capture_id}.eml"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, mime.as_bytes())
        except OSError as err:
            raise ProviderUnavailableError(self.name, f"cannot write {target}: {err}") from err
        return SendResult(
            provider=self.name,
            message_id=capture_id,
            response={"file": str(target), "message_id": str(mime["Message-ID"])},
            follow_up=simulated_events(message, capture_id),
        )

    def close(self) -> None:
        """Nothing is kept open."""


def list_captured(
    directory: Path,
    *,
    before: str | None = None,
    limit: int | None = None,
    ids: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Summaries of captured messages, newest first (empty if the directory is missing):
    at most ``limit``, those captured before the id ``before`` (paging). Only the listed
    files are read, so a page costs the same with 10 or 100,000 messages captured. ``ids``
    are the directory's :func:`captured_ids` when the caller has listed it already.

    Each entry: ``id``, ``file`` (name), ``subject``, ``from``, ``to``, ``date`` (the
    ``Date`` header), ``size`` (bytes).
    """
    ids = captured_ids(directory) if ids is None else ids
    if before is not None:
        ids = [capture_id for capture_id in ids if capture_id < before]
    parser = BytesHeaderParser(policy=policy.default)
    summaries = []
    for capture_id in ids[:limit] if limit is not None else ids:
        path = Path(directory) / f"{capture_id}.eml"
        with path.open("rb") as handle:
            headers = parser.parse(handle)
        summaries.append(
            {
                "id": capture_id,
                "file": path.name,
                "subject": str(headers.get("Subject", "")),
                "from": str(headers.get("From", "")),
                "to": str(headers.get("To", "")),
                "date": str(headers.get("Date", "")),
                "size": path.stat().st_size,
            }
        )
    return summaries


def captured_ids(directory: Path) -> list[str]:
    """Every capture id in ``directory``, newest first (names only: no file is opened)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stems = (name.removesuffix(".eml") for name in os.listdir(directory) if name.endswith(".eml"))
    return sorted((stem for stem in stems if _CAPTURE_ID.match(stem)), reverse=True)


def captured_bytes(directory: Path, capture_id: str) -> bytes:
    """The captured message exactly as stored (its ``.eml``). Same errors as read_captured."""
    if not _CAPTURE_ID.match(capture_id):
        raise ValueError(f"not a capture id: {capture_id!r}")
    return (Path(directory) / f"{capture_id}.eml").read_bytes()


def read_captured(directory: Path, capture_id: str) -> EmailMessage:
    """The captured message ``capture_id``, parsed (``policy.default``).

    Raises ValueError when ``capture_id`` is not a capture id (which also refuses any
    path such as ``../x``), FileNotFoundError when no such message was captured.
    """
    if not _CAPTURE_ID.match(capture_id):
        raise ValueError(f"not a capture id: {capture_id!r}")
    path = Path(directory) / f"{capture_id}.eml"
    with path.open("rb") as handle:
        parsed = BytesParser(policy=policy.default).parse(handle)
    if not isinstance(parsed, EmailMessage):  # pragma: no cover - policy.default guarantees it
        raise TypeError("unexpected message class")
    return parsed


def envelope_recipients(captured: Message) -> list[str]:
    """Every envelope recipient of a captured message (Bcc included), from its envelope header."""
    return [
        address for _, address in getaddresses(captured.get_all(ENVELOPE_HEADER, [])) if address
    ]


def _write_atomically(target: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
