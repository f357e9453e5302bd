"""Opaque page cursors: the last key of a page, base64url-encoded (keyset paging)."""

from __future__ import annotations

import base64
import binascii

from chalicelib.errors import RequestValidationError


def encode_cursor(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The key a cursor stands for; a 422 for anything this service did not hand out."""
    if cursor is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        decoded = ""
    if not decoded or "\x00" in decoded:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ["query", "cursor"],
                    "msg": "invalid cursor",
                    "input": cursor,
                }
            ],
            message="Invalid cursor: pass next_cursor from the previous page",
        )
    return decoded


def next_cursor(keys: list[str], limit: int) -> str | None:
    """The cursor after a page, given the keys of up to ``limit + 1`` rows fetched for it:
    None when no row follows the page."""
    return encode_cursor(keys[limit - 1]) if len(keys) > limit else None
