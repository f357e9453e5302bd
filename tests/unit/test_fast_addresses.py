"""The campaign fast path for addresses is proven against email-validator on generated ones.

Every address the strict pattern (``FAST_EMAIL_PATTERN``) matches, email-validator accepts,
normalised as the fast path says (the domain lower-cased, the rest as written). So a file's
rows can skip email-validator without accepting anything the API refuses. Addresses the API's
pattern matches but the fast one does not go to email-validator (and are tested here too).
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.models.common import EMAIL_PATTERN, FAST_EMAIL_PATTERN
from chalicelib.services.campaign_rows import fast_address, normalized_address

CORPUS = settings(
    max_examples=1500,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
    deadline=None,
)


@CORPUS
@given(st.from_regex(re.compile(FAST_EMAIL_PATTERN), fullmatch=True))
def test_every_fast_match_is_valid_for_email_validator_and_normalised_the_same(
    address: str,
) -> None:
    fast = fast_address(address)
    if len(address) > 254:
        assert fast is None
        return
    assert fast is not None
    assert validate_email(address, check_deliverability=False).normalized == fast


# Domains of short labels over a small alphabet with hyphens, where IDNA's rules bite
# (``ab--c``, ``xn--...``), which a generator of the whole pattern rarely reaches.
_LABELS = st.from_regex(r"[abnx0-9](?:[abnx0-9-]{0,6}[abnx0-9])?", fullmatch=True)
_TRICKY = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.from_regex(r"[A-Za-z0-9._%+-]{1,12}", fullmatch=True),
    st.lists(_LABELS, min_size=1, max_size=3),
    st.sampled_from(["org", "COM", "xn--p1ai", "de", "io"]),
)


@CORPUS
@given(_TRICKY)
def test_hyphenated_labels_are_fast_only_when_email_validator_accepts_them(address: str) -> None:
    fast = fast_address(address)
    if fast is None:
        return
    assert validate_email(address, check_deliverability=False).normalized == fast


@CORPUS
@given(st.from_regex(re.compile(EMAIL_PATTERN), fullmatch=True))
def test_the_slow_path_agrees_with_the_api_on_the_apis_own_pattern(address: str) -> None:
    try:
        expected: str | tuple[str, str] = validate_email(
            address, check_deliverability=False
        ).normalized
    except EmailNotValidError:
        expected = "refused"
    got = normalized_address(address)
    if len(address) > 254:
        assert isinstance(got, tuple)
        return
    assert (got if isinstance(got, str) else "refused") == expected


def test_labels_with_hyphens_in_third_and_fourth_place_take_the_slow_path() -> None:
    assert fast_address("a@ab--cd.example.org") is None
    assert fast_address("a@xn--nxasmq6b.example.org") is None
    assert isinstance(normalized_address("a@ab--cd.example.org"), tuple)  # refused


def test_what_the_api_refuses_a_row_refuses() -> None:
    for address in ("a@b", "a@localhost", "a..b@example.org", "zoë@example.org", "a@b.test"):
        assert isinstance(normalized_address(address), tuple), address
    assert normalized_address("Ann@Example.ORG") == "Ann@example.org"
