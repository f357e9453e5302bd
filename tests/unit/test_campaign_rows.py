"""Validating one campaign row (pure): each check's field and words, its limits at the
boundary, and what a valid row becomes."""

from __future__ import annotations

import pytest

from chalicelib.services import campaign_rows
from chalicelib.services.campaign_files import RawRow
from chalicelib.services.campaign_rows import (
    CampaignRow,
    RowValidator,
    RowVerdict,
    allowed_domains,
    fast_address,
    normalized_address,
)

NOT_A_PARAM_NAME = "not a param name (letters, digits, _; not a built-in placeholder)"


def address_of(length: int, *, slow: bool = False) -> str:
    """An address of ``length`` characters the fast pattern matches (or, ``slow``, only the
    API's: a label ``ab--...`` email-validator refuses)."""
    first = "ab--" + "c" * 59 if slow else "a" * 63
    domain = f"{first}.{'a' * 63}.{'a' * 63}."
    local = "x"
    tld = "b" * (length - len(local) - 1 - len(domain))
    return f"{local}@{domain}{tld}"


def verdict(validator: RowValidator | None = None, /, **fields: object) -> RowVerdict:
    raw = RawRow(line=fields.pop("line", 7), **fields)  # type: ignore[arg-type]
    return (validator or RowValidator([])).check(raw)


def problem(**fields: object) -> tuple[str, str] | None:
    return verdict(**fields).problem


def test_a_valid_row_is_trimmed_and_its_id_defaults_to_the_address() -> None:
    result = verdict(
        mail="  Ann@Example.ORG ",
        name=" Ann ",
        company=" ACME ",
        params={"plan": "gold"},
    )

    assert result == RowVerdict(
        CampaignRow(
            line=7,
            recipient="Ann@example.org",
            email_recipient_id="ann@example.org",
            name="Ann",
            company="ACME",
            params={"plan": "gold"},
        ),
        7,
        "ann@example.org",
        None,
    )
    blank = verdict(mail="b@example.org", name="  ", company=" ", recipient_id=" r-1 ")
    assert blank.row is not None
    assert (blank.row.name, blank.row.company, blank.row.params) == (None, None, {})
    assert blank.email_recipient_id == "r-1"


def test_the_address_checks_name_the_mail_field() -> None:
    assert problem(mail=None) == ("mail", "required")
    assert problem(mail="   ") == ("mail", "required")
    assert problem(mail="not an address") == (
        "mail",
        "not an address like name@example.com (ASCII; punycode domains)",
    )
    refused = problem(mail="a@ab--cd.example.org")  # email-validator's own words
    assert refused is not None
    assert refused[0] == "mail"
    assert refused[1].startswith("invalid email address: ")
    assert "two dashes" in refused[1]


def test_an_address_may_be_254_characters_long_not_255() -> None:
    fast = address_of(254)
    assert len(fast) == 254
    assert fast_address(fast) == fast
    assert normalized_address(fast) == fast
    assert fast_address(address_of(255)) is None
    assert normalized_address(address_of(255)) == ("mail", "longer than 254 characters")
    slow = address_of(254, slow=True)
    assert len(slow) == 254
    assert normalized_address(slow) != ("mail", "longer than 254 characters")
    assert normalized_address(address_of(255, slow=True)) == (
        "mail",
        "longer than 254 characters",
    )


def test_the_fast_path_lowers_the_domain_only() -> None:
    assert fast_address("Ann.Lee@Mail.Example.ORG") == "Ann.Lee@mail.example.org"
    assert normalized_address("Ann.Lee@Mail.Example.ORG") == "Ann.Lee@mail.example.org"


def test_a_fast_address_is_answered_without_email_validator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path is what lets a million rows through: an address it proves valid never
    reaches email-validator (here one that would refuse everything)."""

    def refuse(value: str) -> str:
        raise ValueError("email-validator was asked")

    monkeypatch.setattr(campaign_rows, "checked_address", refuse)

    assert normalized_address("Ann@Example.ORG") == "Ann@example.org"
    assert normalized_address("a@ab--cd.example.org") == ("mail", "email-validator was asked")


def test_the_recipient_id_checks() -> None:
    assert problem(mail="a@example.org", recipient_id="   ") == ("emailRecipientId", "blank")
    assert verdict(mail="a@example.org", recipient_id="r" * 200).problem is None
    long_id = verdict(mail="a@example.org", recipient_id="r" * 201)
    assert long_id.problem == ("emailRecipientId", "longer than 200 characters")
    assert long_id.email_recipient_id == "r" * 200  # cut, so the report can name it
    assert long_id.line == 7
    assert verdict(mail=None, recipient_id=" r-9 ").email_recipient_id == "r-9"
    assert verdict(mail=None).email_recipient_id is None


def test_a_row_read_with_a_problem_keeps_it() -> None:
    result = verdict(mail="a@example.org", recipient_id="r", problem=("row", "bad"))

    assert result == RowVerdict(None, 7, "r", ("row", "bad"))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"recipient_id": "r\x00"}, ("emailRecipientId", "must not contain NUL")),
        ({"name": "A\x00"}, ("name", "must not contain NUL")),
        ({"company": "C\x00"}, ("company", "must not contain NUL")),
        ({"params": {"p\x00q": "v"}}, ("pq", "must not contain NUL")),
        ({"params": {"p": "v\x00"}}, ("p", "must not contain NUL")),
        ({"name": "n" * 201}, ("name", "longer than 200 characters")),
        ({"name": "A\rB"}, ("name", "must not contain line breaks (CR/LF)")),
        ({"name": "A\nB"}, ("name", "must not contain line breaks (CR/LF)")),
        ({"company": "c" * 201}, ("company", "longer than 200 characters")),
        (
            {"params": {f"p{i}": "v" for i in range(51)}},
            ("params", "51 params; at most 50"),
        ),
        (
            {"params": {"company": "v"}},
            ("company", NOT_A_PARAM_NAME),
        ),
        ({"params": {"1x": "v"}}, ("1x", NOT_A_PARAM_NAME)),
        ({"params": {"p": "v" * 10241}}, ("p", "longer than 10240 characters")),
    ],
)
def test_each_check_names_its_field(fields: dict[str, object], expected: tuple[str, str]) -> None:
    assert problem(mail="a@example.org", **fields) == expected


def test_a_row_failing_a_check_is_answered_with_its_line_and_id() -> None:
    result = verdict(mail="a@example.org", recipient_id="r-3", name="A\nB", line=12)

    assert result == RowVerdict(None, 12, "r-3", ("name", "must not contain line breaks (CR/LF)"))


def test_values_at_each_limit_pass() -> None:
    result = verdict(
        mail="a@example.org",
        name="n" * 200,
        company="c" * 200,
        params={f"p{i}": "v" for i in range(49)} | {"big": "v" * 10240},
    )

    assert result.problem is None


def test_required_params_need_a_value_the_first_missing_named() -> None:
    validator = RowValidator(["zeta", "alpha", "mid"])

    assert verdict(validator, mail="a@example.org", params={"mid": "1"}).problem == (
        "alpha",
        "the templates use this param; the row has no value for it",
    )
    assert verdict(
        validator, mail="a@example.org", params={"alpha": "1", "mid": "", "zeta": "z"}
    ).problem == ("mid", "the templates use this param; the row has no value for it")
    assert (
        verdict(
            validator, mail="a@example.org", params={"alpha": "1", "mid": "2", "zeta": "3"}
        ).problem
        is None
    )


def test_the_keys_domains_are_checked_after_the_rows_own_checks() -> None:
    validator = RowValidator([], [allowed_domains(("example.org", "*.example.net"))])

    assert verdict(validator, mail="a@x.example.net").problem is None
    assert verdict(validator, mail="a@example.com").problem == (
        "mail",
        "a@example.com: the key may only mail example.org, *.example.net",
    )
    assert verdict(validator, mail="a@example.com", name="A\nB").problem == (
        "name",
        "must not contain line breaks (CR/LF)",
    )
