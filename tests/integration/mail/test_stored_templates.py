"""Stored templates (SPEC 12): versions, archive, preview, hostile templates refused when
saved, and sending with them: params, their precedence, and a queued message rendering the
version it was accepted with."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from tests.integration.mail.conftest import Wire, mail_headers, seed_request, three_recipients
from tests.support.fake_providers import FakeProvider
from tests.support.http import ADMIN_HEADERS, Answer, call, create_key
from tests.support.queues import Queues, consume_until_empty

WELCOME = {
    "name": "Welcome",
    "subject": "Welcome, {{name}}: your {{plan}} plan",
    "html": "<p>Hi {{name}}, your code is <b>{{code}}</b> ({{ company }})</p>",
    "text": "Hi {{name}}, your code is {{code}}",
    "description": "Sent after sign-up",
    "sample_params": {"plan": "Pro", "code": "ABC-123"},
}


def save(api: Client, body: dict[str, Any] | None = None) -> Answer:
    return call(api, "POST", "/v1/templates", headers=ADMIN_HEADERS, body=body or WELCOME)


def created(api: Client, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = save(api, body)
    assert answer.status == 201, answer.json
    data: dict[str, Any] = answer.json["data"]
    return data


def send_with(api: Client, key: str, template_id: str, **fields: Any) -> Answer:
    body = seed_request(**fields)
    for inline in ("subject", "html_template"):
        body.pop(inline)
    body["template_id"] = template_id
    return call(api, "POST", "/v1/mail", headers=mail_headers(key), body=body)


@pytest.fixture
def provider(wire: Wire) -> FakeProvider:
    fake = FakeProvider("fake")
    wire(sender=fake)
    return fake


def test_create_answers_201_with_version_1_and_the_params_it_uses(api: Client) -> None:
    answer = save(api)

    assert answer.status == 201
    assert answer.json["status"] == 201
    data = answer.json["data"]
    assert data["template_id"].startswith("tpl_")
    assert len(data["template_id"]) == 20
    assert data["version"] == 1
    assert (data["name"], data["subject"], data["html"], data["text"]) == (
        WELCOME["name"],
        WELCOME["subject"],
        WELCOME["html"],
        WELCOME["text"],
    )
    # name and company are built-ins; plan and code are the template's own.
    assert data["params"] == ["code", "plan"]
    assert data["sample_params"] == {"plan": "Pro", "code": "ABC-123"}
    assert data["created_at"].endswith("Z")


def test_versions_are_immutable_and_show_takes_a_version(api: Client) -> None:
    first = created(api)
    path = f"/v1/templates/{first['template_id']}"

    second = call(
        api, "PUT", path, headers=ADMIN_HEADERS, body={**WELCOME, "subject": "v2 {{name}}"}
    )
    latest = call(api, "GET", path, headers=ADMIN_HEADERS)
    old = call(api, "GET", f"{path}?version=1", headers=ADMIN_HEADERS)
    missing = call(api, "GET", f"{path}?version=3", headers=ADMIN_HEADERS)

    assert second.status == 200
    assert second.json["data"]["version"] == 2
    assert latest.json["data"]["version"] == 2
    assert latest.json["data"]["subject"] == "v2 {{name}}"
    assert old.json["data"]["subject"] == WELCOME["subject"]
    assert missing.status == 404


def test_list_pages_through_the_latest_versions(api: Client) -> None:
    ids = [created(api, {**WELCOME, "name": f"t{i}"})["template_id"] for i in range(3)]
    call(
        api,
        "PUT",
        f"/v1/templates/{ids[0]}",
        headers=ADMIN_HEADERS,
        body={**WELCOME, "name": "t0 again"},
    )

    first = call(api, "GET", "/v1/templates?limit=2", headers=ADMIN_HEADERS).json["data"]
    cursor = first["next_cursor"]
    rest = call(api, "GET", f"/v1/templates?limit=2&cursor={cursor}", headers=ADMIN_HEADERS)

    assert [t["template_id"] for t in first["templates"]] == ids[:2]
    assert first["templates"][0]["version"] == 2
    assert first["templates"][0]["name"] == "t0 again"
    assert [t["template_id"] for t in rest.json["data"]["templates"]] == ids[2:]
    assert rest.json["data"]["next_cursor"] is None


def test_archive_refuses_new_work_with_404(provider: FakeProvider, api: Client) -> None:
    template_id = created(api)["template_id"]
    key = create_key(api, ["app.example.com"])["api_key"]
    path = f"/v1/templates/{template_id}"

    archived = call(api, "DELETE", path, headers=ADMIN_HEADERS)
    again = call(api, "DELETE", path, headers=ADMIN_HEADERS)
    shown = call(api, "GET", path, headers=ADMIN_HEADERS)
    put = call(api, "PUT", path, headers=ADMIN_HEADERS, body=WELCOME)
    sent = send_with(api, key, template_id, params={"plan": "x", "code": "y"})
    listed = call(api, "GET", "/v1/templates", headers=ADMIN_HEADERS)

    assert archived.status == 200
    assert archived.json["data"] == {"template_id": template_id, "archived": True}
    assert (again.status, shown.status, put.status, sent.status) == (404, 404, 404, 404)
    assert listed.json["data"]["templates"] == []
    assert provider.sent == []


def test_preview_fills_what_it_is_not_given_from_the_samples(api: Client) -> None:
    template_id = created(api)["template_id"]
    path = f"/v1/templates/{template_id}/preview"

    samples = call(api, "POST", path, headers=ADMIN_HEADERS, body={})
    given = call(
        api,
        "POST",
        path,
        headers=ADMIN_HEADERS,
        body={"params": {"code": "<ZZ>"}, "recipient": {"name": "Ann", "company": "Acme"}},
    )

    assert samples.status == 200
    assert samples.json["data"]["subject"] == "Welcome, Sample Recipient: your Pro plan"
    assert given.json["data"] == {
        "subject": "Welcome, Ann: your Pro plan",
        "html": "<p>Hi Ann, your code is <b>&lt;ZZ&gt;</b> (Acme)</p>",
        "text": "Hi Ann, your code is <ZZ>",
    }


def test_preview_by_an_api_key_only_of_templates_its_policy_allows(api: Client) -> None:
    allowed = created(api)["template_id"]
    other = created(api)["template_id"]
    key = create_key(api, ["app.example.com"], policy={"template_ids": [allowed]})["api_key"]
    headers = mail_headers(key)

    ok = call(api, "POST", f"/v1/templates/{allowed}/preview", headers=headers, body={})
    refused = call(api, "POST", f"/v1/templates/{other}/preview", headers=headers, body={})
    no_key = call(
        api,
        "POST",
        f"/v1/templates/{allowed}/preview",
        headers={"Content-Type": "application/json"},
        body={},
    )

    assert ok.status == 200
    assert refused.status == 403
    assert refused.json["details"][0]["loc"] == ["template_id"]
    assert no_key.status == 401


@pytest.mark.parametrize(
    ("html", "status", "limit"),
    [
        ("{{ 'a' * 10**9 }}", 413, "MAX_MESSAGE_BYTES"),
        ("{% for i in range(10**8) %}x{% endfor %}", 422, "MAX_RENDER_OPERATIONS"),
        ("{{ lipsum(10**6) }}", 422, None),
        ("{% macro m(n) %}{{ m(n) }}{{ m(n) }}{% endmacro %}{{ m(1) }}", 422, None),
        ("{{ unclosed", 422, None),
        ("{{ 1 / 0 }}", 422, None),
    ],
)
def test_hostile_or_broken_templates_are_refused_when_saved(
    api: Client, html: str, status: int, limit: str | None
) -> None:
    started = time.monotonic()
    answer = save(api, {"name": "evil", "subject": "s", "html": html})
    elapsed = time.monotonic() - started

    assert answer.status == status, answer.json
    assert answer.json["details"][0]["loc"] == ["html"]
    if limit:
        assert answer.json["details"][0]["ctx"]["limit"] == limit
    assert elapsed < 10  # MAX_RENDER_SECONDS, the safety net: nothing hangs
    assert call(api, "GET", "/v1/templates", headers=ADMIN_HEADERS).json["data"]["templates"] == []


def test_a_single_send_renders_the_stored_template_with_params(
    provider: FakeProvider, api: Client, clean_database: str
) -> None:
    template = created(api)
    key = create_key(api, ["app.example.com"])["api_key"]

    answer = send_with(api, key, template["template_id"], params={"plan": "Team", "code": "7"})

    assert answer.status == 200, answer.json
    message = provider.sent[0]
    assert message.subject == "Welcome, John Doe: your Team plan"
    assert message.html == "<p>Hi John Doe, your code is <b>7</b> (Acme Corp)</p>"
    assert message.text == "Hi John Doe, your code is 7"
    with psycopg.connect(clean_database) as conn:
        row = conn.execute("SELECT template_id, template_version FROM deliveries").fetchone()
    assert row == (template["template_id"], 1)


def test_recipient_params_win_over_the_requests_and_missing_ones_are_named(
    provider: FakeProvider, api: Client, queues: Queues
) -> None:
    services_key = create_key(api, ["app.example.com"])["api_key"]
    template_id = created(api)["template_id"]
    recipients = three_recipients()
    recipients[0]["params"] = {"code": "ALICE"}  # type: ignore[assignment]

    missing = send_with(api, services_key, template_id, recipients=recipients, params={"plan": "P"})
    answer = send_with(
        api,
        services_key,
        template_id,
        recipients=recipients,
        params={"plan": "P", "code": "EVERYONE"},
    )

    assert missing.status == 422
    failing = [d["loc"] for d in missing.json["details"]]
    assert failing == [["recipients", 1], ["recipients", 2]]
    assert "'code' is undefined" in missing.json["details"][0]["msg"]
    assert answer.status == 202, answer.json


def test_a_queued_message_renders_its_version_after_a_put_and_an_archive(
    wire: Wire, api: Client, queues: Queues
) -> None:
    provider = FakeProvider("fake")
    services = wire(sender=provider)
    template_id = created(api)["template_id"]
    key = create_key(api, ["app.example.com"])["api_key"]
    recipients = three_recipients()
    recipients[0]["params"] = {"code": "A-1"}  # type: ignore[assignment]

    accepted = send_with(
        api, key, template_id, recipients=recipients, params={"plan": "v1", "code": "ALL"}
    )
    path = f"/v1/templates/{template_id}"
    call(api, "PUT", path, headers=ADMIN_HEADERS, body={**WELCOME, "subject": "NEW {{name}}"})
    call(api, "DELETE", path, headers=ADMIN_HEADERS)
    consume_until_empty(services, queues)
    replay = send_with(
        api, key, template_id, recipients=recipients, params={"plan": "v1", "code": "ALL"}
    )

    assert accepted.status == 202
    subjects = sorted(m.subject for m in provider.sent)
    assert subjects == [
        "Welcome, <b>Bob & Co</b>: your v1 plan",
        "Welcome, Alice: your v1 plan",
        "Welcome, Carol: your v1 plan",
    ]
    by_name = {m.to[0].email: m.text for m in provider.sent}
    assert by_name["alice@example.org"] == "Hi Alice, your code is A-1"
    assert by_name["carol@example.org"] == "Hi Carol, your code is ALL"
    # Posted again after the new version and the archive: its status, not a 400 or a 404.
    assert replay.status == 202, replay.json
    assert replay.json["message"].startswith("Emails already accepted")


def test_a_pinned_version_renders_that_version(provider: FakeProvider, api: Client) -> None:
    template_id = created(api)["template_id"]
    call(
        api,
        "PUT",
        f"/v1/templates/{template_id}",
        headers=ADMIN_HEADERS,
        body={**WELCOME, "subject": "v2 for {{name}}"},
    )
    key = create_key(api, ["app.example.com"])["api_key"]
    params = {"plan": "p", "code": "c"}

    latest = send_with(api, key, template_id, params=params, email_id="latest")
    pinned = send_with(api, key, template_id, params=params, email_id="v1", template_version=1)
    unknown = send_with(api, key, template_id, params=params, email_id="v9", template_version=9)

    assert (latest.status, pinned.status, unknown.status) == (200, 200, 404)
    assert [m.subject for m in provider.sent] == [
        "v2 for John Doe",
        "Welcome, John Doe: your p plan",
    ]


def test_inline_templates_take_params_too(provider: FakeProvider, api: Client) -> None:
    key = create_key(api, ["app.example.com"])["api_key"]

    answer = call(
        api,
        "POST",
        "/v1/mail",
        headers=mail_headers(key),
        body=seed_request(subject="Code {{code}}", params={"code": "42"}),
    )

    assert answer.status == 200, answer.json
    assert provider.sent[0].subject == "Code 42"


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"template_id": "tpl_aaaaaaaaaaaaaaaa"}, []),  # and inline subject/html: both
        ({"subject": None, "html_template": None}, []),  # neither
        ({"template_version": 2}, []),  # a version without template_id
        ({"params": {"name": "x"}}, ["params", "name", "[key]"]),  # a built-in name
        ({"params": {f"p{i}": "v" for i in range(51)}}, ["params"]),
        ({"params": {"p": "v" * 10_241}}, ["params", "p"]),
    ],
)
def test_template_fields_are_checked(api: Client, change: dict[str, Any], loc: list[Any]) -> None:
    key = create_key(api, ["app.example.com"])["api_key"]
    body = {k: v for k, v in {**seed_request(), **change}.items() if v is not None}

    answer = call(api, "POST", "/v1/mail", headers=mail_headers(key), body=body)

    assert answer.status == 422, answer.json
    assert answer.json["details"][0]["loc"] == loc
