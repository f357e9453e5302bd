"""Opaque page cursors: the last key of a page, base64url-encoded (keyset paging)."""

from __future__ import annotations

import base64
import binascii


def encode_cursor(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The key a cursor stands for. Cursors are opaque base64url (as the API documents);
    one this service did not hand out still pages, from wherever it happens to point."""
    if cursor is None:
        return None
    whole = cursor[: len(cursor) - len(cursor) % 4 if len(cursor) % 4 == 1 else len(cursor)]
    try:
        raw = base64.urlsafe_b64decode(whole + "=" * (-len(whole) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def next_cursor(keys: list[str], limit: int) -> str | None:
    """The cursor after a page, given the keys of up to ``limit + 1`` rows fetched for it:
    None when no row follows the page."""
    return encode_cursor(keys[limit - 1]) if len(keys) > limit else None
