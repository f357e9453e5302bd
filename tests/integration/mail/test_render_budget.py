"""Templates any key holder writes cannot make the service spend without bound (SPEC 11)."""

from __future__ import annotations

import json

import psycopg
import pytest
from chalice.test import Client

from tests.integration.mail.conftest import Wire, mail_headers, seed_request, three_recipients
from tests.support.fake_providers import FakeProvider
from tests.support.http import call
from tests.support.queues import Queues, consume_until_empty

NESTED = (
    "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}x"
    "{% endfor %}{% endfor %}{% endfor %}"
)
ABUSE = [
    ("string repetition", "{{ 'a' * 1000000000 }}", 413, "MAX_MESSAGE_BYTES"),
    ("huge range", "{% for i in range(100000000) %}x{% endfor %}", 422, "MAX_RENDER_OPERATIONS"),
    ("nested loops", NESTED, 422, "MAX_RENDER_OPERATIONS"),
    (
        "set concatenation",
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s }}",
        413,
        "MAX_MESSAGE_BYTES",
    ),
    (
        "output grows past the limit",
        "{% for i in range(99999) %}{{ 'x' * 9999 }}{% endfor %}",
        413,
        "MAX_MESSAGE_BYTES",
    ),
    ("deep recursion", "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}", 422, "recursion"),
    (
        "exponential macros",
        "{% macro m(n) %}{% if n %}{{ m(n-1) }}{{ m(n-1) }}{% endif %}{% endmacro %}{{ m(40) }}",
        422,
        "MAX_RENDER_OPERATIONS",
    ),
    ("huge power", "{{ 10 ** 100000000 }}", 422, "MAX_RENDER_OPERATIONS"),
    ("%-padding", "{{ '%999999999s' % name }}", 413, "MAX_MESSAGE_BYTES"),
    ("%-padding from *", "{{ '%*s' % (900000000, name) }}", 413, "MAX_MESSAGE_BYTES"),
    ("%-precision", "{{ '%.900000000f' % 1.0 }}", 413, "MAX_MESSAGE_BYTES"),
    (
        "replace blow-up",
        "{% set s = 'a' * 100000 %}{{ s.replace('a', 'a' * 1000) }}",
        413,
        "MAX_MESSAGE_BYTES",
    ),
]
REMOVED = [
    ("lipsum", "{{ lipsum(1000000) }}", "lipsum"),
    ("center filter", "{{ name|center(100000000) }}", "center"),
    ("str.ljust", "{{ name.ljust(100000000) }}", "ljust"),
    ("str.format", "{{ '{:>100000000}'.format(name) }}", "format"),
    ("str.format_map", "{{ '{n:>100000000}'.format_map({'n': name}) }}", "format_map"),
    ("cycler", "{{ cycler(1, 2).next() }}", "cycler"),
]


def recorded(database: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM deliveries").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
@pytest.mark.parametrize(
    ("name", "template", "status", "limit"), ABUSE, ids=[case[0] for case in ABUSE]
)
def test_a_template_over_budget_is_refused_naming_the_limit(
    wire: Wire,
    api: Client,
    api_key: str,
    queues: Queues,
    clean_database: str,
    name: str,
    template: str,
    status: int,
    limit: str,
    bulk: bool,
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider)
    body = seed_request(html_template=template)
    if bulk:
        body["recipients"] = three_recipients()

    answer = call(api, "POST", "/v1/mail", body=body, headers=mail_headers(api_key))

    assert answer.status == status, answer.json
    assert limit in answer.json["message"] or limit in json.dumps(answer.json["details"])
    assert provider.sent == []
    assert recorded(clean_database) == 0
    assert queues.count(queues.processing) == 0


@pytest.mark.parametrize(("name", "template", "word"), REMOVED, ids=[case[0] for case in REMOVED])
def test_text_generators_and_padding_are_not_available(
    wire: Wire, api: Client, api_key: str, name: str, template: str, word: str
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider)

    answer = call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(html_template=template),
        headers=mail_headers(api_key),
    )

    assert answer.status == 422
    assert word in json.dumps(answer.json["details"])
    assert provider.sent == []


def test_ordinary_templates_with_loops_and_filters_still_render(
    wire: Wire, api: Client, api_key: str
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider)
    template = (
        "<p>Hi {{ name|upper }}{% if company %} of {{ company|title }}{% endif %}</p>"
        "<ul>{% for i in range(3) %}<li>{{ 'item ' ~ i }}</li>{% endfor %}</ul>"
        "{% macro sig(who) %}-- {{ who }}{% endmacro %}{{ sig(sender_name) }}"
    )

    answer = call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(html_template=template),
        headers=mail_headers(api_key),
    )

    assert answer.status == 200, answer.json
    assert "<li>item 2</li>" in provider.sent[0].html
    assert "-- Support Team" in provider.sent[0].html


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{% for i in range(99999) %}{{ 'x' * 9999 }}{% endfor %}", "MAX_MESSAGE_BYTES"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ],
)
def test_a_queued_message_that_cannot_render_fails_without_a_retry(
    wire: Wire, queues: Queues, clean_database: str, template: str, error: str
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider)
    message = {
        "email_id": "external-1",
        "email_recipient_id": "r-1",
        "sender_email": "support@example.com",
        "subject": "Hi",
        "html_template": template,
        "recipient_email": "ann@example.org",
    }
    queues.sqs.send_message(QueueUrl=queues.processing, MessageBody=json.dumps(message))

    assert consume_until_empty(services, queues) == 1  # one invocation: acknowledged, not retried

    assert provider.sent == []
    (report,) = queues.drain_json(queues.result)
    assert report["status"] == "failed"
    assert error in report["result"]["last_error"]
    assert queues.count(queues.dead_letter) == 0


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ 10.0 ** 1000 }}", "OverflowError"),
        ("{{ name + 1 }}", "TypeError"),
        ("{{ name.index('z') }}", "ValueError"),
    ],
)
def test_an_expression_that_fails_is_a_422_naming_the_error(
    wire: Wire, api: Client, api_key: str, template: str, error: str
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider)

    answer = call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(html_template=template),
        headers=mail_headers(api_key),
    )

    assert answer.status == 422, answer.json
    assert error in answer.json["details"][0]["msg"]
    assert provider.sent == []


def test_a_template_failing_for_every_recipient_lists_the_first_hundred(
    wire: Wire, api: Client, api_key: str, clean_database: str
) -> None:
    wire(sender=FakeProvider("fake"))
    recipients = [{"mail": f"r{i}@example.org", "emailRecipientId": f"r-{i}"} for i in range(250)]
    body = seed_request(html_template="{{ 1 / 0 }}", recipients=recipients)

    answer = call(api, "POST", "/v1/mail", body=body, headers=mail_headers(api_key))

    assert answer.status == 422
    assert len(answer.json["details"]) == 100
    assert "for 250 of 250 recipients (the first 100 are listed)" in answer.json["message"]
    assert recorded(clean_database) == 0
