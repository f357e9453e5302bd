"""The policy rules themselves (pure): sender and domain matching, defaults, the CIDR pattern
the OpenAPI document states against what the service parses."""

from __future__ import annotations

import ipaddress
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.models.api_keys import CIDR_PATTERN, RECIPIENT_DOMAIN_PATTERN
from chalicelib.services.key_policy import (
    KeyPolicy,
    PolicyDefaults,
    domain_allowed,
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
