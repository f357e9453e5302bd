"""An attachment's file name: the OpenAPI document and the server refuse the same names.

The document's pattern is read by clients and fuzzers as an ECMA regex, the server's check is
Python's: the two read ``\\s`` differently (Python's includes ``\\x1c``-``\\x1f`` and ``\\x85``,
ECMA's ``\\ufeff``). A name made only of such characters was accepted by the document and
refused by the server (a schema-valid request answered 422, found by the contract run).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from chalicelib.models.mail import AttachmentIn

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
# ECMA-262's WhiteSpace and LineTerminator: what ``\s`` means in the document's regex.
ECMA_WHITESPACE = r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"

NAMES = [
    "report.pdf",
    "x",
    "a\x1d",
    "\u00e9t\u00e9.txt",
    ".",
    "..",
    " . ",
    "\x1d",
    "\x1c\x1f",
    "\x85",
    "\ufeff",
    "\u00a0",
    "\x00",
    "\x7f",
    "\u3000.",
    "dir/name.txt",
    "dir\\name.txt",
]


def _document_pattern() -> str:
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    pattern = document["components"]["schemas"]["AttachmentIn"]["properties"]["filename"]
    return str(pattern["pattern"])


def _server_accepts(name: str) -> bool:
    try:
        AttachmentIn.model_validate(
            {"filename": name, "content_type": "text/plain", "content": "aGk="}
        )
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", NAMES, ids=ascii)
def test_the_document_and_the_server_refuse_the_same_file_names(name: str) -> None:
    pattern = _document_pattern()
    as_python = re.fullmatch(pattern, name) is not None
    as_ecma = re.fullmatch(pattern.replace(r"\s", ECMA_WHITESPACE), name) is not None
    assert as_python == as_ecma == _server_accepts(name)


@pytest.mark.parametrize("name", ["\x1d", "\x85", "\ufeff", " . ", "..", "dir/a.txt"], ids=ascii)
def test_a_name_with_nothing_visible_or_a_path_is_refused(name: str) -> None:
    assert not _server_accepts(name)


@pytest.mark.parametrize(
    "name", ["report.pdf", "a\x1d", ".env", "r\u00e9sum\u00e9 2024.pdf"], ids=ascii
)
def test_a_name_with_a_visible_character_and_no_path_is_taken(name: str) -> None:
    assert _server_accepts(name)


def _content_type_pattern() -> str:
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    schema = document["components"]["schemas"]["AttachmentIn"]["properties"]["content_type"]
    return str(schema["pattern"])


def _server_content_type(value: str) -> str | None:
    try:
        attachment = AttachmentIn.model_validate(
            {"filename": "a.txt", "content_type": value, "content": "aGk="}
        )
    except ValidationError:
        return None
    return attachment.content_type


@pytest.mark.parametrize(
    "value",
    ["text/plain", "Application/PDF", "text/plain\x00", "\u212a/plain", "text", "/x", "a/b/c"],
    ids=ascii,
)
def test_the_document_and_the_server_take_the_same_content_types(value: str) -> None:
    """Nothing is case-folded into a type the document refuses (``"\\u212a".lower()`` is
    ``"k"``). (White space around a request's strings is trimmed first: RequestModel.)"""
    in_document = re.fullmatch(_content_type_pattern(), value) is not None
    assert in_document == (_server_content_type(value) is not None)


def test_a_content_type_is_kept_in_lower_case() -> None:
    assert _server_content_type("Application/PDF") == "application/pdf"
