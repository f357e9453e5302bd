"""Types shared by request, response and queue models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, model_validator
from pydantic_core import PydanticCustomError

T = TypeVar("T")

# Patterns the OpenAPI document states and the models enforce (so both accept the same).
# After surrounding whitespace is stripped, something is left. The whitespace pydantic strips
# (Unicode's White_Space) spelled out, not \S: ECMA regexes (JSON Schema's) do not count
# U+0085 as space, so "\u0085" matched the document's \S while the model stripped it away.
NOT_BLANK = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
SINGLE_LINE = r"^[^\r\n]*$"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_RESERVED_TLDS = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


# An ASCII address as email-validator accepts it without DNS (SES takes ASCII only: an
# internationalised domain is written in punycode, xn--...).
EMAIL_PATTERN = (
    rf"^{_ATEXT}{{1,32}}(?:\.{_ATEXT}{{1,15}}){{0,2}}@(?:{_LABEL}\.){{1,4}}"
    rf"(?!(?:{'|'.join(_any_case(t) for t in _RESERVED_TLDS)})$)[A-Za-z]{{2,63}}$"
)
# A stricter pattern whose every match (up to 254 characters) email-validator accepts as it
# is, its domain lower-cased (tests/unit/test_fast_addresses.py checks it on generated
# addresses): no label with "--" in 3rd-4th place (IDNA's rule; xn-- labels included), so
# a file of a million addresses is checked without calling email-validator for each.
FAST_EMAIL_PATTERN = (
    rf"^{_ATEXT}{{1,32}}(?:\.{_ATEXT}{{1,15}}){{0,2}}@(?:(?![A-Za-z0-9]{{2}}--){_LABEL}\.){{1,4}}"
    rf"(?!(?:{'|'.join(_any_case(t) for t in _RESERVED_TLDS)})$)[A-Za-z]{{2,63}}$"
)


def format_utc(value: datetime) -> str:
    """``2025-01-27T10:30:00Z``: the timestamp format of every MMMS payload."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


UtcDatetime = Annotated[
    datetime, PlainSerializer(format_utc, return_type=str, when_used="json-unless-none")
]


def _json_integer(value: Any) -> Any:
    """A JSON integer: an int, or a number with no fraction (JSON Schema counts 3.0 as an
    integer); never a string or a boolean, which pydantic's lax mode would take."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# An integer field of a JSON body takes what JSON Schema's "integer" accepts, and only that:
# ``Annotated[int, Field(ge=...), JSON_INTEGER]`` (the validator after the constraints, so the
# document keeps them as ``minimum``/``maximum``).
JSON_INTEGER = BeforeValidator(_json_integer)


def contains_nul(value: Any) -> bool:
    """True when a string anywhere in ``value`` holds NUL, which PostgreSQL cannot store."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False


class NoNulModel(BaseModel):
    """Refuses NUL characters in any string (a 422, not a database error)."""

    # The patterns use lookahead, which only Python's engine has (and the fuzzer uses it too).
    model_config = ConfigDict(regex_engine="python-re")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if contains_nul(data):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return data


class RequestModel(NoNulModel):
    """A request body: unknown fields are refused so that typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, regex_engine="python-re")


class Envelope(BaseModel, Generic[T]):
    """The success envelope of every JSON answer."""

    status: int
    message: str
    data: T


class ErrorEnvelope(BaseModel):
    """The error envelope of every failed request (SPEC section 3)."""

    status: int
    error: str
    error_type: str
    message: str
    details: Any = None
    request_id: str
