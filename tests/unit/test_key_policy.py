"""The policy rules themselves (pure): sender and domain matching, defaults, the CIDR pattern
the OpenAPI document states against what the service parses."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import CaptchaUnavailableError, ForbiddenError
from chalicelib.models.api_keys import CIDR_PATTERN, RECIPIENT_DOMAIN_PATTERN
from chalicelib.services.key_policy import (
    KeyPolicy,
    PolicyDefaults,
    Refusal,
    SendGate,
    domain_allowed,
    refuse,
    sender_allowed,
)

DEFAULTS = PolicyDefaults(max_recipients=1000, browser_daily_quota=50, browser_per_ip_per_minute=6)


def test_a_sender_rule_is_an_address_or_an_exact_domain() -> None:
    rules = ["boss@example.com", "@news.example.org"]

    assert sender_allowed(rules, "Boss@Example.com")
    assert sender_allowed(rules, "anyone@NEWS.example.org")
    assert not sender_allowed(rules, "other@example.com")
    assert not sender_allowed(rules, "a@sub.news.example.org")
    assert not sender_allowed(rules, "a@evilnews.example.org")


def test_a_recipient_domain_is_exact_or_its_subdomains_with_a_wildcard() -> None:
    rules = ["example.org", "*.example.net"]

    assert domain_allowed(rules, "a@Example.ORG")
    assert domain_allowed(rules, "a@deep.eu.example.net")
    assert not domain_allowed(rules, "a@example.net")  # the wildcard is subdomains only
    assert not domain_allowed(rules, "a@sub.example.org")
    assert not domain_allowed(rules, "a@evilexample.net")
    assert not domain_allowed(rules, "a@example.org.evil.com")


def test_defaults_depend_on_the_kind_and_the_deployment() -> None:
    browser = KeyPolicy.resolve("browser", {}, DEFAULTS)
    server = KeyPolicy.resolve("server", {}, DEFAULTS)
    capped = KeyPolicy.resolve("server", {"max_recipients_per_request": 5000}, DEFAULTS)

    assert (browser.daily_recipient_quota, browser.per_ip_per_minute) == (50, 6)
    assert (server.daily_recipient_quota, server.per_ip_per_minute) == (None, None)
    assert browser.inline_templates is True
    assert browser.require_captcha is False
    assert capped.max_recipients_per_request == 1000  # never above the deployment's


@settings(max_examples=300, deadline=None)
@given(st.from_regex(CIDR_PATTERN, fullmatch=True))
def test_every_network_the_document_allows_is_one_the_service_parses(value: str) -> None:
    ipaddress.ip_network(value, strict=False)


def test_the_cidr_pattern_refuses_what_does_not_parse() -> None:
    for bad in ("10.0.0.256", "10.0.0.0/33", "01.2.3.4", "::1/129", "1:2:3", "a.b.c.d", ""):
        assert not re.fullmatch(CIDR_PATTERN, bad), bad


def test_the_recipient_domain_pattern() -> None:
    assert re.fullmatch(RECIPIENT_DOMAIN_PATTERN, "*.example.org")
    assert re.fullmatch(RECIPIENT_DOMAIN_PATTERN, "example.org")
    for bad in ("example", "*.org", "ex ample.org", "*example.org", "example.org."):
        assert not re.fullmatch(RECIPIENT_DOMAIN_PATTERN, bad), bad


# --- the policy's checks, each refusal's field and words (issue 17: killed mutants) ---


@dataclass
class Mail:
    sender_email: str = "team@example.com"
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    template_id: str | None = None
    subject: str | None = None
    html_template: str | None = None
    text_template: str | None = None


class Verifier:
    """A CAPTCHA verifier that accepts one token, recording what it was asked."""

    def __init__(self, good: str = "good") -> None:
        self.good = good
        self.asked: list[tuple[str, str | None]] = []

    def verify(self, token: str, remote_ip: str | None) -> bool:
        self.asked.append((token, remote_ip))
        return token == self.good


def refusal_of(call: Callable[[], object]) -> ForbiddenError:
    with pytest.raises(ForbiddenError) as caught:
        call()
    return caught.value


def test_stored_fields_override_the_defaults_and_lists_become_tuples() -> None:
    stored = {
        "allowed_senders": ["a@example.com"],
        "allowed_recipient_domains": ["example.org"],
        "inline_templates": False,
        "template_ids": ["t1", "t2"],
        "max_recipients_per_request": 5,
        "daily_recipient_quota": 7,
        "per_ip_per_minute": 3,
        "require_captcha": True,
    }

    for kind in ("browser", "server"):
        policy = KeyPolicy.resolve(kind, stored, DEFAULTS)
        assert policy == KeyPolicy(
            allowed_senders=("a@example.com",),
            allowed_recipient_domains=("example.org",),
            inline_templates=False,
            template_ids=("t1", "t2"),
            max_recipients_per_request=5,
            daily_recipient_quota=7,
            per_ip_per_minute=3,
            require_captcha=True,
        )
        assert policy.as_dict() == {**stored}
    server = KeyPolicy.resolve("server", {}, DEFAULTS)
    assert server == KeyPolicy(max_recipients_per_request=1000)
    assert server.as_dict() == {
        "allowed_senders": None,
        "allowed_recipient_domains": None,
        "inline_templates": True,
        "template_ids": None,
        "max_recipients_per_request": 1000,
        "daily_recipient_quota": None,
        "per_ip_per_minute": None,
        "require_captcha": False,
    }
    assert KeyPolicy().max_recipients_per_request == 10_000
    assert KeyPolicy.resolve("server", {"allowed_senders": []}, DEFAULTS).allowed_senders == ()


def test_each_refusal_names_its_field_and_says_why() -> None:
    policy = KeyPolicy(
        allowed_senders=("@example.com",),
        allowed_recipient_domains=("example.org", "*.example.net"),
        inline_templates=False,
        template_ids=("welcome",),
        max_recipients_per_request=2,
    )

    assert policy.sender_refusal("x@example.com") == []
    assert policy.sender_refusal("x@other.com") == [
        Refusal(("sender_email",), "x@other.com is not an allowed sender for this key")
    ]
    assert policy.sender_refusal("x@other.com", ("from",))[0].loc == ("from",)
    assert policy.recipient_refusal("a@example.org", ("to", 0)) == []
    assert policy.recipient_refusal("a@example.com", ("to", 0)) == [
        Refusal(("to", 0), "a@example.com: the key may only mail example.org, *.example.net")
    ]
    assert policy.template_refusals(template_id="welcome", inline_fields=[]) == []
    assert policy.template_refusals(template_id="other", inline_fields=["subject", "x"]) == [
        Refusal(("subject",), "this key may only send stored templates (template_id)"),
        Refusal(("x",), "this key may only send stored templates (template_id)"),
        Refusal(("template_id",), "this key may not use this template"),
    ]
    assert policy.size_refusal(2) == []
    assert policy.size_refusal(3) == [
        Refusal(("recipients",), "3 recipients; this key may send to at most 2 per request")
    ]
    open_policy = KeyPolicy()
    assert open_policy.sender_refusal("x@other.com") == []
    assert open_policy.recipient_refusal("a@b.com", ("to", 0)) == []
    assert open_policy.template_refusals(template_id="any", inline_fields=["subject"]) == []
    assert (
        KeyPolicy(template_ids=("a",)).template_refusals(template_id=None, inline_fields=[]) == []
    )


def test_refuse_lists_the_first_hundred_and_counts_the_rest() -> None:
    refuse([])  # nothing to refuse: no error

    one = refusal_of(lambda: refuse([Refusal(("a", 1), "first")]))
    assert one.message == "The key's policy refuses this request: first"
    assert one.details == [{"type": "forbidden", "loc": ["a", 1], "msg": "first", "input": None}]

    many = [Refusal(("recipients", i), f"no {i}") for i in range(102)]
    error = refusal_of(lambda: refuse(many))
    assert error.message == "The key's policy refuses this request: no 0 (and 101 more)"
    assert len(error.details) == 100
    assert error.details[-1]["loc"] == ["recipients", 99]
    two = refusal_of(lambda: refuse(many[:2]))
    assert two.message.endswith("no 0 (and 1 more)")


def test_an_address_is_matched_on_its_last_at() -> None:
    assert sender_allowed(["@example.com"], '"a@b"@example.com')
    assert not sender_allowed(["@b"], '"a@b"@example.com')
    assert domain_allowed(["example.com"], '"a@b"@example.com')
    assert not domain_allowed(["b"], '"a@b"@example.com')
    assert domain_allowed(["*.example.com"], "a@x.EXAMPLE.com")
    assert not domain_allowed([], "a@example.com")


def test_the_gate_refuses_every_field_at_once() -> None:
    policy = KeyPolicy(
        allowed_senders=("ok@example.com",),
        allowed_recipient_domains=("example.org",),
        inline_templates=False,
        template_ids=("t",),
        max_recipients_per_request=1,
    )
    mail = Mail(
        sender_email="bad@example.com",
        cc=["c@example.org", "c@bad.com"],
        bcc=["b@bad.com"],
        template_id="u",
        subject="Hi",
        text_template="x",
    )

    error = refusal_of(
        lambda: SendGate().authorize(
            policy,
            mail,
            recipients=["r@example.org", "r@bad.com"],
            captcha_token=None,
            client_ip=None,
        )
    )

    assert [d["loc"] for d in error.details] == [
        ["recipients"],
        ["sender_email"],
        ["recipients", 1, "mail"],
        ["cc", 1],
        ["bcc", 0],
        ["subject"],
        ["text_template"],
        ["template_id"],
    ]


def test_past_the_deployments_limit_the_size_is_not_the_policys_refusal() -> None:
    policy = KeyPolicy(max_recipients_per_request=1)
    gate = SendGate(max_recipients=2)
    args = {"captcha_token": None, "client_ip": None}

    gate.authorize(KeyPolicy(), Mail(), recipients=["a@x.org"] * 3, **args)
    gate.authorize(policy, Mail(), recipients=["a@x.org"] * 3, **args)  # MailService's 413
    error = refusal_of(lambda: gate.authorize(policy, Mail(), recipients=["a@x.org"] * 2, **args))
    assert [d["loc"] for d in error.details] == [["recipients"]]
    assert SendGate()._max_recipients == 10_000


def test_the_captcha_is_asked_only_when_the_policy_requires_it() -> None:
    verifier = Verifier()
    gate = SendGate(verifier)

    gate.authorize(KeyPolicy(), Mail(), recipients=[], captcha_token=None, client_ip="1.2.3.4")
    assert verifier.asked == []
    gate.authorize(
        KeyPolicy(require_captcha=True),
        Mail(),
        recipients=[],
        captcha_token=" good ",
        client_ip="1.2.3.4",
    )
    assert verifier.asked == [("good", "1.2.3.4")]
    error = refusal_of(
        lambda: gate.authorize(
            KeyPolicy(require_captcha=True),
            Mail(),
            recipients=[],
            captcha_token="bad",
            client_ip=None,
        )
    )
    assert error.details[0]["loc"] == ["X-Captcha-Token"]
    assert error.details[0]["msg"] == "the CAPTCHA token was refused by the verifier"


@pytest.mark.parametrize("token", [None, "", "   "])
def test_a_missing_captcha_token_is_refused_without_asking(token: str | None) -> None:
    verifier = Verifier()

    error = refusal_of(lambda: SendGate(verifier).verify_captcha(token, None))

    assert error.details == [
        {
            "type": "forbidden",
            "loc": ["X-Captcha-Token"],
            "msg": "this key requires a CAPTCHA: send its token in X-Captcha-Token",
            "input": None,
        }
    ]
    assert verifier.asked == []


def test_a_captcha_token_over_4096_characters_is_refused_without_asking() -> None:
    verifier = Verifier(good="g" * 4096)
    gate = SendGate(verifier)

    gate.verify_captcha("g" * 4096, None)
    error = refusal_of(lambda: gate.verify_captcha("g" * 4097, None))

    assert error.details[0]["loc"] == ["X-Captcha-Token"]
    assert error.details[0]["msg"] == "the CAPTCHA token is too long"
    assert verifier.asked == [("g" * 4096, None)]


def test_without_a_verifier_a_required_captcha_is_unavailable() -> None:
    with pytest.raises(CaptchaUnavailableError) as caught:
        SendGate().verify_captcha("token", None)

    assert caught.value.message == (
        "The CAPTCHA could not be verified (no CAPTCHA provider is configured); try again shortly"
    )


@dataclass
class BareMail:
    """A request with only the fields the gate must read: no inline template fields."""

    sender_email: str = "team@example.com"
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    template_id: str | None = "welcome"


def test_a_request_without_inline_fields_is_held_to_its_template_ids_only() -> None:
    policy = KeyPolicy(inline_templates=False, template_ids=("welcome",))
    gate = SendGate()

    gate.authorize(policy, BareMail(), recipients=["a@x.org"], captcha_token=None, client_ip=None)
    error = refusal_of(
        lambda: gate.authorize(
            policy,
            BareMail(template_id="other"),
            recipients=["a@x.org"],
            captcha_token=None,
            client_ip=None,
        )
    )
    assert [d["loc"] for d in error.details] == [["template_id"]]
