from __future__ import annotations

import pytest

from chalicelib.services.api_keys import candidate_origin_names
from chalicelib.services.origins import (
    RequestOrigin,
    normalize_origin_name,
    origin_allowed,
    parse_request_origin,
)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Example.COM", "example.com"),
        (" localhost:4321 ", "localhost:4321"),
        ("*.Example.com", "*.example.com"),
        ("127.0.0.1:8000", "127.0.0.1:8000"),
    ],
)
def test_valid_origin_names_are_normalised(raw: str, normal: str) -> None:
    assert normalize_origin_name(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "https://example.com",
        "example.com/path",
        "",
        "exa mple.com",
        "*.com",
        "*",
        "-a.com",
        "example.com:0",
        "example.com:99999",
        "a..com",
        "x" * 300,
    ],
)
def test_invalid_origin_names_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - message varies per rule
        normalize_origin_name(raw)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("https://App.Example.com", RequestOrigin("app.example.com", 443)),
        ("http://localhost:4321", RequestOrigin("localhost", 4321)),
        ("null", None),
        ("", None),
        (None, None),
        ("ftp://x.com", None),
        ("https://", None),
        ("https://x.com:notaport", None),
    ],
)
def test_request_origins_are_parsed(header: str | None, expected: RequestOrigin | None) -> None:
    assert parse_request_origin(header) == expected


def test_candidate_names_match_exactly_what_origin_allowed_accepts() -> None:
    origin = RequestOrigin("a.b.example.com", 443)
    candidates = candidate_origin_names(origin)

    assert all(origin_allowed([name], origin) for name in candidates)
    assert set(candidates) >= {
        "a.b.example.com",
        "a.b.example.com:443",
        "*.b.example.com",
        "*.example.com",
        "*.example.com:443",
    }
