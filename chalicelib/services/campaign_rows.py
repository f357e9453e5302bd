"""Validating one campaign row: a pipeline of checks, each one field's rule (SPEC 13).

A row is valid when every check passes; the first that fails names the row's error
(``field``, ``message``). The checks hold a file's rows to what ``POST /v1/mail`` holds a
recipient to (same address rule, lengths, single-line names, params), plus the campaign's
own: every param its templates need, and the key's policy (a check handed in). Duplicate
recipient ids and the suppression list are checked over the whole file in the database.

Addresses: a file of a million rows cannot afford email-validator for each (about 20,000
addresses/s on one core here). :data:`FAST_EMAIL_PATTERN` is a strict pattern every match of
which email-validator accepts unchanged but for the domain's case (checked on generated
addresses by ``tests/unit/test_fast_addresses.py``); only addresses that match the API's
pattern but not the fast one (a ``--`` label...) go to email-validator.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chalicelib.models.common import EMAIL_PATTERN, FAST_EMAIL_PATTERN
from chalicelib.models.mail import MAX_ID_LENGTH, checked_address
from chalicelib.models.templates import MAX_PARAM_VALUE_CHARS, MAX_PARAMS, PARAM_NAME_PATTERN
from chalicelib.services.campaign_files import RawRow
from chalicelib.services.key_policy import domain_allowed

MAX_NAME_LENGTH = 200
MAX_ADDRESS_LENGTH = 254
_PARAM_NAME = re.compile(PARAM_NAME_PATTERN)

_FAST = re.compile(FAST_EMAIL_PATTERN)
_API = re.compile(EMAIL_PATTERN)


@dataclass(slots=True)
class CampaignRow:
    """A row on its way through the checks; once they all pass, a recipient to stage."""

    line: int
    recipient: str
    email_recipient_id: str
    name: str | None
    company: str | None
    params: dict[str, str]


Problem = tuple[str, str]  # (field, message)
RowCheck = Callable[[CampaignRow], Problem | None]


@dataclass(frozen=True)
class RowVerdict:
    row: CampaignRow | None  # the valid row, or None
    line: int
    email_recipient_id: str | None
    problem: Problem | None


def fast_address(value: str) -> str | None:
    """``value`` normalised as email-validator would, when the fast pattern proves it valid;
    None when it has to be checked the slow way."""
    if len(value) <= MAX_ADDRESS_LENGTH and _FAST.fullmatch(value):
        local, _, domain = value.rpartition("@")
        return f"{local}@{domain.lower()}"
    return None


def normalized_address(value: str) -> str | Problem:
    """The address as the API normalises it, or the problem with it."""
    fast = fast_address(value)
    if fast is not None:
        return fast
    if len(value) > MAX_ADDRESS_LENGTH:
        return ("mail", f"longer than {MAX_ADDRESS_LENGTH} characters")
    if not _API.fullmatch(value):
        return ("mail", "not an address like name@example.com (ASCII; punycode domains)")
    try:
        return checked_address(value)
    except ValueError as err:
        return ("mail", str(err))


def allowed_domains(domains: tuple[str, ...]) -> RowCheck:
    """The key's policy as a row check: the address must be at one of ``domains``."""

    def check(row: CampaignRow) -> Problem | None:
        if domain_allowed(domains, row.recipient):
            return None
        return ("mail", f"{row.recipient}: the key may only mail {', '.join(domains)}")

    return check


class RowValidator:
    """The checks for one campaign's rows. ``extra_checks`` run after the built-in ones (the
    key's policy plugs in there)."""

    def __init__(
        self, required_params: Iterable[str], extra_checks: Iterable[RowCheck] = ()
    ) -> None:
        self._required = sorted(required_params)
        self._checks: list[RowCheck] = [
            _no_nul,
            _single_line_name,
            _company,
            self._params,
            *extra_checks,
        ]

    def check(self, raw: RawRow) -> RowVerdict:
        row = _candidate(raw)
        if isinstance(row, RowVerdict):
            return row
        for check in self._checks:
            problem = check(row)
            if problem is not None:
                return RowVerdict(None, row.line, row.email_recipient_id, problem)
        return RowVerdict(row, row.line, row.email_recipient_id, None)

    def _params(self, row: CampaignRow) -> Problem | None:
        params = row.params
        if len(params) > MAX_PARAMS:
            return ("params", f"{len(params)} params; at most {MAX_PARAMS}")
        for name, value in params.items():
            if not _PARAM_NAME.fullmatch(name):
                return (name, "not a param name (letters, digits, _; not a built-in placeholder)")
            if len(value) > MAX_PARAM_VALUE_CHARS:
                return (name, f"longer than {MAX_PARAM_VALUE_CHARS} characters")
        for name in self._required:
            if not params.get(name):
                return (name, "the templates use this param; the row has no value for it")
        return None


def _candidate(raw: RawRow) -> CampaignRow | RowVerdict:
    """The row with its address normalised and its recipient id, or its verdict when
    either is wrong (the later checks need both)."""
    problem: Problem | None = raw.problem
    mail = (raw.mail or "").strip()
    rid = raw.recipient_id.strip() if raw.recipient_id else ""
    address: str | Problem = ""
    if problem is None:
        address = normalized_address(mail) if mail else ("mail", "required")
        if isinstance(address, tuple):
            problem = address
        elif raw.recipient_id and not rid:
            problem = ("emailRecipientId", "blank")
        elif len(rid) > MAX_ID_LENGTH:
            problem = ("emailRecipientId", f"longer than {MAX_ID_LENGTH} characters")
    if problem is not None or isinstance(address, tuple):
        return RowVerdict(None, raw.line, rid[:MAX_ID_LENGTH] or None, problem)
    return CampaignRow(
        line=raw.line,
        recipient=address,
        email_recipient_id=rid or address.lower(),
        name=(raw.name.strip() or None) if raw.name else None,
        company=(raw.company.strip() or None) if raw.company else None,
        params=raw.params or {},
    )


def _no_nul(row: CampaignRow) -> Problem | None:
    for field, value in (
        ("emailRecipientId", row.email_recipient_id),
        ("name", row.name),
        ("company", row.company),
    ):
        if value and "\x00" in value:
            return (field, "must not contain NUL")
    for name, value in row.params.items():
        if "\x00" in name or "\x00" in value:
            return (name.replace("\x00", ""), "must not contain NUL")
    return None


def _single_line_name(row: CampaignRow) -> Problem | None:
    name = row.name
    if name is None:
        return None
    if len(name) > MAX_NAME_LENGTH:
        return ("name", f"longer than {MAX_NAME_LENGTH} characters")
    if "\r" in name or "\n" in name:
        return ("name", "must not contain line breaks (CR/LF)")
    return None


def _company(row: CampaignRow) -> Problem | None:
    if row.company is not None and len(row.company) > MAX_NAME_LENGTH:
        return ("company", f"longer than {MAX_NAME_LENGTH} characters")
    return None
