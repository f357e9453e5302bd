"""Per-key policies (SPEC 12): each field allows and refuses, a refusal records nothing,
PATCH takes effect on the next request, and the daily quota holds under concurrency."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from chalice.test import Client

from chalicelib.bootstrap import Container
from tests.integration.mail.conftest import (
    ORIGIN,
    SENDER,
    Wire,
    mail_headers,
    seed_request,
    three_recipients,
)
from tests.support.fake_providers import FakeProvider
from tests.support.http import ADMIN_HEADERS, Answer, call, create_key
from tests.support.local_server import serving
from tests.support.queues import Queues


def key_with(api: Client, policy: dict[str, Any], **extra: Any) -> str:
    key: str = create_key(api, ["app.example.com"], policy=policy, **extra)["api_key"]
    return key


def send(api: Client, key: str, **overrides: Any) -> Answer:
    return call(api, "POST", "/v1/mail", headers=mail_headers(key), body=seed_request(**overrides))


def recorded(database: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM deliveries").fetchone()
        emails = conn.execute("SELECT count(*) FROM emails").fetchone()
    assert row is not None
    assert emails is not None
    return int(row[0]) + int(emails[0])


def refused_nothing_done(
    answer: Answer, loc: list[Any], provider: FakeProvider, database: str
) -> None:
    """A 403 naming ``loc``; nothing sent, nothing recorded."""
    assert answer.status == 403, answer.json
    assert answer.json["error_type"] == "forbidden"
    assert loc in [detail["loc"] for detail in answer.json["details"]], answer.json
    assert provider.sent == []
    assert recorded(database) == 0


@pytest.fixture
def provider(wire: Wire) -> FakeProvider:
    fake = FakeProvider("fake")
    wire(sender=fake)
    return fake


def test_get_shows_the_policy_with_the_deployments_defaults_and_never_the_key(
    wire: Wire, api: Client, clean_database: str
) -> None:
    wire(browser_key_daily_quota=250, browser_key_per_ip_per_minute=7, max_recipients=500)
    browser = create_key(api, ["app.example.com"])
    server = create_key(api, [], kind="server")

    shown = call(api, "GET", f"/v1/api-key/{browser['key_id']}", headers=ADMIN_HEADERS)
    shown_server = call(api, "GET", f"/v1/api-key/{server['api_key']}", headers=ADMIN_HEADERS)

    assert shown.status == 200
    data = shown.json["data"]
    assert set(data) == {
        "key_id",
        "name",
        "kind",
        "mode",
        "is_active",
        "origin_names",
        "allowed_ips",
        "policy",
        "created_at",
        "expires_at",
        "recipients_today",
    }
    assert data["kind"] == "browser"
    assert data["origin_names"] == ["app.example.com"]
    assert data["policy"] == {
        "allowed_senders": None,
        "allowed_recipient_domains": None,
        "inline_templates": True,
        "template_ids": None,
        "max_recipients_per_request": 500,
        "daily_recipient_quota": 250,
        "per_ip_per_minute": 7,
        "require_captcha": False,
    }
    assert data["recipients_today"] == 0
    assert browser["api_key"] not in shown.text
    server_policy = shown_server.json["data"]["policy"]
    assert shown_server.json["data"]["kind"] == "server"
    assert server_policy["daily_recipient_quota"] is None
    assert server_policy["per_ip_per_minute"] is None
    assert server["api_key"] not in shown_server.text


def test_allowed_senders_take_addresses_and_domains(
    provider: FakeProvider, api: Client, clean_database: str
) -> None:
    key = key_with(api, {"allowed_senders": ["Boss@Example.com", "@news.example.org"]})

    refused = send(api, key, sender_email="support@example.com")
    refused_nothing_done(refused, ["sender_email"], provider, clean_database)
    assert send(api, key, sender_email="boss@example.com").status == 200
    assert send(api, key, sender_email="team@news.example.org", email_id="m-2").status == 200
    assert send(api, key, sender_email="x@sub.news.example.org", email_id="m-3").status == 403
    assert [m.sender.email for m in provider.sent] == ["boss@example.com", "team@news.example.org"]


def test_allowed_recipient_domains_cover_recipients_cc_and_bcc(
    provider: FakeProvider, api: Client, clean_database: str
) -> None:
    key = key_with(api, {"allowed_recipient_domains": ["example.org", "*.example.net"]})
    recipients = three_recipients()
    recipients[1]["mail"] = "bob@evil.com"

    wrong_recipient = send(api, key, recipients=recipients)
    wrong_cc = send(api, key, recipients=three_recipients()[:1], cc=["x@evil.com"])
    wrong_bcc = send(api, key, recipients=three_recipients()[:1], bcc=["y@example.net"])

    refused_nothing_done(wrong_recipient, ["recipients", 1, "mail"], provider, clean_database)
    refused_nothing_done(wrong_cc, ["cc", 0], provider, clean_database)
    refused_nothing_done(wrong_bcc, ["bcc", 0], provider, clean_database)
    allowed = send(
        api, key, recipients=three_recipients()[:1], cc=["c@eu.example.net"], bcc=["b@example.org"]
    )
    assert allowed.status == 200, allowed.json
    assert [a.email for a in provider.sent[0].cc] == ["c@eu.example.net"]


def test_a_template_only_key_refuses_inline_content(
    provider: FakeProvider, api: Client, clean_database: str
) -> None:
    key = key_with(api, {"inline_templates": False})

    answer = send(api, key, text_template="plain {{name}}")

    assert answer.status == 403
    locs = [detail["loc"] for detail in answer.json["details"]]
    assert locs == [["subject"], ["html_template"], ["text_template"]]
    refused_nothing_done(answer, ["html_template"], provider, clean_database)


def test_template_ids_limit_the_stored_templates_a_key_may_use(
    provider: FakeProvider, api: Client, clean_database: str
) -> None:
    allowed = create_template(api, "Welcome {{name}}")
    other = create_template(api, "Other {{name}}")
    key = key_with(api, {"template_ids": [allowed], "inline_templates": False})

    refused = send_template(api, key, other)
    refused_nothing_done(refused, ["template_id"], provider, clean_database)
    assert send_template(api, key, allowed).status == 200
    assert [m.subject for m in provider.sent] == ["Welcome John Doe"]


def test_max_recipients_per_request_caps_below_the_deployment(
    provider: FakeProvider, api: Client, clean_database: str
) -> None:
    key = key_with(api, {"max_recipients_per_request": 2})

    refused = send(api, key, recipients=three_recipients())
    refused_nothing_done(refused, ["recipients"], provider, clean_database)
    assert send(api, key, recipients=three_recipients()[:2]).status == 202


def test_the_daily_quota_counts_new_recipients_only_and_refuses_with_retry_after(
    provider: FakeProvider, api: Client, clean_database: str, queues: Queues
) -> None:
    key = key_with(api, {"daily_recipient_quota": 3})
    created = create_key(api, ["app.example.com"])

    first = send(api, key, recipients=three_recipients()[:2], email_id="a")
    replay = send(api, key, recipients=three_recipients()[:2], email_id="a")
    over = send(api, key, recipients=three_recipients()[:2], email_id="b")
    last = send(api, key, recipients=three_recipients()[2:], email_id="c")
    after = send(api, key, recipients=three_recipients()[2:], email_id="d")

    assert (first.status, replay.status, last.status) == (202, 202, 200)
    assert over.status == 429
    assert over.json["error_type"] == "rate_limited"
    assert 1 <= int(over.headers["retry-after"]) <= 86_400
    assert after.status == 429
    with psycopg.connect(clean_database) as conn:
        rows = conn.execute("SELECT email_id FROM deliveries ORDER BY email_id").fetchall()
    assert [r[0] for r in rows] == ["a", "a", "c"]
    shown = call(api, "GET", f"/v1/api-key/{key}", headers=ADMIN_HEADERS).json["data"]
    assert shown["recipients_today"] == 3
    other = call(api, "GET", f"/v1/api-key/{created['key_id']}", headers=ADMIN_HEADERS)
    assert other.json["data"]["recipients_today"] == 0


def test_twenty_concurrent_requests_against_a_quota_of_ten_accept_exactly_ten(
    wire: Wire, api: Client, clean_database: str
) -> None:
    """Each request alone fits the quota; together they may not pass it."""
    provider = FakeProvider("fake")
    wire(sender=provider, rate_limit_per_minute=0)
    key = key_with(api, {"daily_recipient_quota": 10, "per_ip_per_minute": 1000})
    start = threading.Barrier(20)

    def one(url: str, index: int) -> int:
        body = json.dumps(seed_request(email_id=f"quota-{index}"))
        with httpx.Client(base_url=url, timeout=30) as http:
            start.wait()  # all twenty in flight together
            return http.post("/v1/mail", headers=mail_headers(key), content=body).status_code

    with serving() as url, ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda i: one(url, i), range(20)))

    assert sorted(statuses) == [200] * 10 + [429] * 10
    assert len(provider.sent) == 10
    with psycopg.connect(clean_database) as conn:
        count = conn.execute("SELECT count(*) FROM deliveries").fetchone()
        usage = conn.execute("SELECT sum(recipients) FROM key_daily_usage").fetchone()
    assert count is not None
    assert usage is not None
    assert (count[0], usage[0]) == (10, 10)


def test_the_per_ip_limit_refuses_with_retry_after_and_does_not_count_refusals(
    provider: FakeProvider, api: Client, clean_database: str
) -> None:
    key = key_with(api, {"per_ip_per_minute": 2})

    statuses = [send(api, key, email_id=f"ip-{i}").status for i in range(4)]
    refused = send(api, key, email_id="ip-9")

    assert statuses == [200, 200, 429, 429]
    assert refused.json["error_type"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    with psycopg.connect(clean_database) as conn:
        hits = conn.execute("SELECT hits FROM key_ip_windows").fetchall()
    assert [h[0] for h in hits] == [2]
    assert len(provider.sent) == 2


def test_patch_takes_effect_on_the_next_request_and_null_restores_the_default(
    provider: FakeProvider, api: Client
) -> None:
    key = create_key(api, ["app.example.com"])
    path = f"/v1/api-key/{key['key_id']}"

    before = send(api, key["api_key"], email_id="p-1")
    patched = call(
        api,
        "PATCH",
        path,
        headers=ADMIN_HEADERS,
        body={"policy": {"allowed_senders": ["@example.net"], "per_ip_per_minute": 500}},
    )
    during = send(api, key["api_key"], email_id="p-2")
    restored = call(
        api, "PATCH", path, headers=ADMIN_HEADERS, body={"policy": {"allowed_senders": None}}
    )
    after = send(api, key["api_key"], email_id="p-3")

    assert before.status == 200
    assert patched.status == 200
    assert patched.json["data"]["policy"]["allowed_senders"] == ["@example.net"]
    assert during.status == 403
    assert during.json["details"][0]["loc"] == ["sender_email"]
    assert restored.json["data"]["policy"]["allowed_senders"] is None
    # per_ip_per_minute was not named by the second PATCH: it stays.
    assert restored.json["data"]["policy"]["per_ip_per_minute"] == 500
    assert after.status == 200


def test_a_key_that_requires_a_captcha_needs_a_configured_provider(api: Client) -> None:
    answer = call(
        api,
        "POST",
        "/v1/api-key",
        headers=ADMIN_HEADERS,
        body={"name": "k", "origin_names": ["a.example.com"], "policy": {"require_captcha": True}},
    )

    assert answer.status == 422
    assert answer.json["details"][0]["loc"] == ["policy", "require_captcha"]


def test_policy_values_are_checked_as_the_document_states(api: Client) -> None:
    bad = [
        {"allowed_senders": ["not an address"]},
        {"allowed_senders": [" @example.com"]},
        {"allowed_recipient_domains": ["*.com."]},
        {"daily_recipient_quota": 0},
        {"daily_recipient_quota": "10"},
        {"per_ip_per_minute": 1.5},
        {"require_captcha": 1},
        {"template_ids": ["tpl_short"]},
        {"unknown_field": True},
    ]
    for policy in bad:
        answer = call(
            api,
            "POST",
            "/v1/api-key",
            headers=ADMIN_HEADERS,
            body={"name": "k", "origin_names": ["a.example.com"], "policy": policy},
        )
        assert answer.status == 422, policy
    integral_float = create_key(api, ["a.example.com"], policy={"per_ip_per_minute": 5.0})
    assert integral_float["policy"]["per_ip_per_minute"] == 5


def create_template(api: Client, subject: str) -> str:
    answer = call(
        api,
        "POST",
        "/v1/templates",
        headers=ADMIN_HEADERS,
        body={"name": "t", "subject": subject, "html": "<p>Hi {{name}}</p>"},
    )
    assert answer.status == 201, answer.json
    template_id: str = answer.json["data"]["template_id"]
    return template_id


def send_template(api: Client, key: str, template_id: str, **overrides: Any) -> Answer:
    body = seed_request(**overrides)
    for field in ("subject", "html_template"):
        body.pop(field)
    body["template_id"] = template_id
    return call(api, "POST", "/v1/mail", headers=mail_headers(key), body=body)


def test_the_seed_flow_is_unchanged(provider: FakeProvider, api: Client) -> None:
    """``{"name", "origin_names"}`` makes a browser key that sends the seed's inline payload."""
    created = call(
        api,
        "POST",
        "/v1/api-key",
        headers=ADMIN_HEADERS,
        body={"name": "My API Key", "origin_names": ["app.example.com"]},
    )
    answer = call(
        api,
        "POST",
        "/v1/mail",
        headers={"x-api-key": created.json["data"]["api_key"], "Origin": ORIGIN},
        body=seed_request(),
    )

    assert created.json["data"]["kind"] == "browser"
    assert answer.status == 200, answer.json
    assert provider.sent[0].sender.email == SENDER


def test_the_sweep_forgets_old_per_ip_windows_and_daily_counts(
    wire: Wire, clean_database: str
) -> None:
    from chalicelib.controllers.queue_consumer import sweep_deliveries

    services = wire(sender=FakeProvider("fake"))
    key = "11111111-1111-1111-1111-111111111111"
    with psycopg.connect(clean_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO key_ip_windows VALUES (%s, '10.0.0.1', now() - interval '11 minutes', 3),"
            " (%s, '10.0.0.1', date_trunc('minute', now()), 1)",
            (key, key),
        )
        conn.execute(
            "INSERT INTO key_daily_usage VALUES (%s, current_date - 40, 5), (%s, current_date, 2)",
            (key, key),
        )

    sweep_deliveries(services)

    with psycopg.connect(clean_database) as conn:
        windows = conn.execute("SELECT hits FROM key_ip_windows").fetchall()
        days = conn.execute("SELECT recipients FROM key_daily_usage").fetchall()
    assert [w[0] for w in windows] == [1]
    assert [d[0] for d in days] == [2]


# --- the counts themselves (KeyLimitRepository), at their limits (issue 17) ---

KEY_A = uuid.UUID("22222222-2222-2222-2222-222222222222")
KEY_B = uuid.UUID("33333333-3333-3333-3333-333333333333")


def usage_rows(database: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database) as conn:
        return conn.execute(
            "SELECT api_key_id, recipients FROM key_daily_usage ORDER BY api_key_id"
        ).fetchall()


def test_the_daily_count_reaches_the_quota_exactly_and_gives_back_never_below_zero(
    services: Container, clean_database: str
) -> None:
    limits = services.key_limits

    assert limits.reserve_recipients(KEY_A, 0, 0)  # nothing to count always fits
    assert limits.reserve_recipients(KEY_A, -1, 0)
    assert usage_rows(clean_database) == []  # and counts nothing
    assert limits.recipients_today(KEY_A) == 0
    assert limits.reserve_recipients(KEY_A, 1, 3)
    assert limits.reserve_recipients(KEY_A, 2, 3)  # exactly the quota
    assert not limits.reserve_recipients(KEY_A, 1, 3)
    assert not limits.reserve_recipients(KEY_B, 4, 3)  # alone over it
    assert usage_rows(clean_database) == [(KEY_A, 3)]
    assert limits.reserve_recipients(KEY_A, 5, None)  # no quota
    assert limits.recipients_today(KEY_A) == 8
    assert limits.recipients_today(KEY_B) == 0

    limits.release_recipients(KEY_A, 1)
    assert limits.recipients_today(KEY_A) == 7
    limits.release_recipients(KEY_A, 0)
    limits.release_recipients(KEY_A, -5)
    assert limits.recipients_today(KEY_A) == 7
    limits.release_recipients(KEY_A, 100)
    assert limits.recipients_today(KEY_A) == 0
    limits.release_recipients(KEY_B, 2)  # nothing counted today: nothing to give back
    assert usage_rows(clean_database) == [(KEY_A, 0)]
    assert limits.reserve_recipients(KEY_B, 3, 3)  # the whole quota at once
    assert usage_rows(clean_database) == [(KEY_A, 0), (KEY_B, 3)]


def test_a_client_ips_minute_counts_to_its_limit_and_no_further(services: Container) -> None:
    limits = services.key_limits

    hits = [limits.hit_ip(KEY_A, "10.0.0.1", 2) for _ in range(3)]
    other_ip = limits.hit_ip(KEY_A, "10.0.0.2", 2)
    other_key = limits.hit_ip(KEY_B, "10.0.0.1", 2)

    assert [h.hits for h in hits] == [1, 2, None]
    assert (other_ip.hits, other_key.hits) == (1, 1)
    for window in (*hits, other_ip, other_key):
        assert 0 < window.seconds_left <= 60


def test_prune_keeps_ten_minutes_of_windows_and_35_days_of_counts(
    services: Container, clean_database: str
) -> None:
    with psycopg.connect(clean_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO key_ip_windows VALUES"
            " (%(k)s, '10.0.0.1', now() - interval '10 minutes 30 seconds', 3),"
            " (%(k)s, '10.0.0.2', now() - interval '9 minutes 30 seconds', 2)",
            {"k": KEY_A},
        )
        conn.execute(
            "INSERT INTO key_daily_usage SELECT %(k)s, (now() AT TIME ZONE 'UTC')::date - d, r"
            " FROM (VALUES (36, 5), (35, 4), (37, 6)) AS old(d, r)",
            {"k": KEY_A},
        )

    removed = services.key_limits.prune()

    with psycopg.connect(clean_database) as conn:
        windows = conn.execute("SELECT hits FROM key_ip_windows").fetchall()
        days = conn.execute("SELECT recipients FROM key_daily_usage").fetchall()
    assert [w[0] for w in windows] == [2]
    assert [d[0] for d in days] == [4]
    assert removed == 3
