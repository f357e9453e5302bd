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
    """The key lookup by candidate names and ``origin_allowed`` agree both ways: every
    candidate is allowed, and every valid origin name that is allowed is a candidate."""
    origin = RequestOrigin("a.b.example.com", 443)
    hosts = ["a.b.example.com", "b.example.com", "example.com", "x.a.b.example.com", "b.com"]
    wildcards = [f"*.{host}" for host in hosts]
    names = [f"{host}{port}" for host in hosts + wildcards for port in ("", ":443", ":80", ":8443")]

    candidates = candidate_origin_names(origin)
    allowed = {name for name in valid(names) if origin_allowed([name], origin)}

    assert set(candidates) == allowed
    assert sorted(candidates) == sorted(
        [
            "a.b.example.com",
            "a.b.example.com:443",
            "*.b.example.com",
            "*.b.example.com:443",
            "*.example.com",
            "*.example.com:443",
        ]
    )


def valid(names: list[str]) -> list[str]:
    """The names an API key may hold (``normalize_origin_name`` refuses the others)."""
    kept = []
    for name in names:
        try:
            kept.append(normalize_origin_name(name))
        except ValueError:
            continue
    return kept


# ECMA-262's WhiteSpace and LineTerminator: what ``\s`` would mean in the document's regex.
ECMA_WHITESPACE = r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


@pytest.mark.parametrize(
    "raw",
    [
        " app.example.com\t",
        "\x1capp.example.com",
        "app.example.com\x85",
        "\ufeffapp.example.com",
        "\u00a0app.example.com",
        "\u212a.example.com",  # KELVIN SIGN: lower() makes it "k"
        "app.example.com",
        "*.example.com:8443",
    ],
    ids=ascii,
)
def test_the_document_and_the_server_take_the_same_origin_names(raw: str) -> None:
    """The document's pattern (an ECMA regex for clients and fuzzers) and the server's check
    (Python) accept the same names: white space is trimmed only where both call it so."""
    import re

    from chalicelib.services.origins import ORIGIN_NAME_PATTERN

    as_python = re.fullmatch(ORIGIN_NAME_PATTERN, raw) is not None
    ecma_pattern = ORIGIN_NAME_PATTERN.replace(r"\s", f"[{ECMA_WHITESPACE}]")
    as_ecma = re.fullmatch(ecma_pattern, raw) is not None
    try:
        normalize_origin_name(raw)
        accepted = True
    except ValueError:
        accepted = False
    assert as_python == as_ecma == accepted
