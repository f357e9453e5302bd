"""Everything is validated before anything is sent or queued."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from tests.integration.mail.conftest import Wire, mail_headers, seed_request, three_recipients
from tests.support.fake_providers import FakeProvider
from tests.support.http import Answer, call
from tests.support.queues import Queues

ROOT = Path(__file__).resolve().parents[3]


def post(api: Client, key: str, body: dict[str, Any]) -> Answer:
    return call(api, "POST", "/v1/mail", body=body, headers=mail_headers(key))


def assert_nothing_happened(provider: FakeProvider, queues: Queues, database: str) -> None:
    assert provider.attempts == 0
    assert queues.count(queues.processing) == 0
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)


def test_unknown_placeholder_is_422_before_anything_is_queued(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider)

    answer = post(
        api,
        api_key,
        seed_request(
            recipients=three_recipients(), html_template="<p>Hi {{ name }} {{ surname }}</p>"
        ),
    )

    assert answer.status == 422
    assert answer.json["error_type"] == "validation_error"
    assert [d["loc"] for d in answer.json["details"]] == [
        ["recipients", 0],
        ["recipients", 1],
        ["recipients", 2],
    ]
    assert "surname" in answer.json["details"][0]["msg"]
    assert_nothing_happened(provider, queues, clean_database)


def test_a_template_that_does_not_compile_is_one_422(wire: Wire, api: Client, api_key: str) -> None:
    wire(sender=FakeProvider("fake"))

    answer = post(api, api_key, seed_request(html_template="<p>{{ name </p>"))

    assert answer.status == 422
    assert [d["loc"] for d in answer.json["details"]] == [["html_template"]]


def test_line_breaks_in_subject_or_names_are_422(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider)
    recipient = {"name": "Eve\r\nBcc: victim@example.org", "mail": "eve@example.org"}
    cases = [
        seed_request(subject="Hello\r\nBcc: victim@example.org"),
        seed_request(sender_name="Support\nTeam"),
        seed_request(recipients=[recipient]),
        seed_request(
            subject="Hi {{ company }}", recipients=[{"mail": "x@example.org", "company": "A\r\nB"}]
        ),
    ]
    for body in cases:
        assert post(api, api_key, body).status == 422
    assert_nothing_happened(provider, queues, clean_database)


def test_every_bad_address_is_listed(wire: Wire, api: Client, api_key: str) -> None:
    wire(sender=FakeProvider("fake"))
    recipients = three_recipients()
    recipients[0]["mail"] = "not-an-address"
    recipients[2]["mail"] = "carol@@example.org"

    answer = post(api, api_key, seed_request(recipients=recipients, cc=["also bad"]))

    assert answer.status == 422
    locs = [d["loc"] for d in answer.json["details"]]
    assert ["recipients", 0, "mail"] in locs
    assert ["recipients", 2, "mail"] in locs
    assert ["cc", 0] in locs


@pytest.mark.parametrize(
    "fields",
    [
        {"html_template": "<p>Hi\u0000</p>"},
        {"metadata": {"k\u0000": "v"}},  # a key: the document says "keys included"
        {"metadata": {"k": "v\u0000"}},
        {"recipients": [{"mail": "a@example.org", "name": "A\u0000"}]},
    ],
)
def test_nul_characters_are_422_not_a_database_error(
    wire: Wire,
    api: Client,
    api_key: str,
    queues: Queues,
    clean_database: str,
    fields: dict[str, Any],
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider)

    answer = post(api, api_key, seed_request(**fields))

    assert answer.status == 422
    assert "NUL" in answer.json["details"][0]["msg"]
    assert_nothing_happened(provider, queues, clean_database)


def test_duplicate_recipients_are_422(wire: Wire, api: Client, api_key: str) -> None:
    wire(sender=FakeProvider("fake"))
    recipients = [{"mail": "a@example.org"}, {"mail": "A@example.org"}]

    answer = post(api, api_key, seed_request(recipients=recipients, emailRecipientId=None))

    assert answer.status == 422
    assert answer.json["details"][0]["type"] == "duplicate_recipient"


def test_missing_fields_are_422(wire: Wire, api: Client, api_key: str) -> None:
    wire(sender=FakeProvider("fake"))
    body = seed_request()
    del body["email_id"]
    body["recipients"] = []

    answer = post(api, api_key, body)

    locs = [d["loc"] for d in answer.json["details"]]
    assert answer.status == 422
    assert ["email_id"] in locs
    assert ["recipients"] in locs


def test_limits_are_413(
    wire: Wire, api: Client, api_key: str, queues: Queues, clean_database: str
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider, max_recipients=2, max_template_bytes=1000, queue_max_message_bytes=8000)
    big_file = base64.b64encode(b"x" * 9000).decode()
    cases = [
        seed_request(recipients=three_recipients()),
        seed_request(html_template="<p>" + "x" * 2000 + "</p>"),
        seed_request(
            attachments=[
                {"filename": "a.bin", "content_type": "application/pdf", "content": big_file}
            ]
        ),
    ]
    for body in cases:
        answer = post(api, api_key, body)
        assert answer.status == 413, answer.json
        assert answer.json["error_type"] == "payload_too_large"
    assert_nothing_happened(provider, queues, clean_database)


@pytest.mark.parametrize(
    "target", ["http://example.com/u", "https://example.com/a b", "https://example.com/\x1e"]
)
def test_an_unsubscribe_target_the_document_refuses_is_422(
    wire: Wire, api: Client, api_key: str, target: str
) -> None:
    wire(sender=FakeProvider("fake"))

    answer = post(api, api_key, seed_request(list_unsubscribe=target))

    assert answer.status == 422
    assert [d["loc"] for d in answer.json["details"]] == [["list_unsubscribe"]]
    # The document refuses it too, read as JSON Schema reads it (ECMA's \s, not Python's).
    assert re.fullmatch(as_ecma(document_pattern("list_unsubscribe")), target) is None


# ECMA-262's \s: WhiteSpace and LineTerminator. Python's also holds \x1c-\x1f and \x85.
_ECMA_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def as_ecma(pattern: str) -> str:
    """``pattern`` with each ``\\s`` inside a character class spelled as ECMA reads it."""
    return pattern.replace("\\s", _ECMA_SPACE)


def document_pattern(field: str) -> str:
    schema = json.loads((ROOT / "docs" / "openapi.json").read_text())
    return str(
        schema["components"]["schemas"]["SendMailRequest"]["properties"][field]["anyOf"][0][
            "pattern"
        ]
    )
