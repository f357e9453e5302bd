"""Server keys (no origins, refused from a page, bound to client addresses) and CAPTCHA
(SPEC 12), against a local siteverify verifier over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.config import Settings
from tests.conftest import make_settings
from tests.integration.mail.conftest import ORIGIN, Wire, mail_headers, seed_request
from tests.support.apigw import invoke, raw_request, rest_api_event
from tests.support.captcha_verifier import SECRET, Verifier, running_verifier
from tests.support.fake_providers import FakeProvider
from tests.support.http import ADMIN_HEADERS, Answer, call, create_key
from tests.support.local_server import serving

JSON = {"Content-Type": "application/json"}
PEER = "127.0.0.5"


def server_key(api: Client, **extra: Any) -> str:
    key: str = create_key(api, [], kind="server", **extra)["api_key"]
    return key


def send(api: Client, headers: dict[str, str], **overrides: Any) -> Answer:
    return call(
        api, "POST", "/v1/mail", headers={**JSON, **headers}, body=seed_request(**overrides)
    )


def nothing_recorded(database: str) -> bool:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM deliveries").fetchone()
    return row is not None and row[0] == 0


@pytest.fixture
def provider(wire: Wire) -> FakeProvider:
    fake = FakeProvider("fake")
    wire(sender=fake)
    return fake


def test_a_server_key_sends_without_origin_and_is_refused_with_one(
    provider: FakeProvider, api: Client, clean_database: str
) -> None:
    key = server_key(api)

    from_page = send(api, {"x-api-key": key, "Origin": ORIGIN})
    refused_first = nothing_recorded(clean_database)
    from_backend = send(api, {"x-api-key": key})

    assert from_page.status == 403
    assert from_page.json["error_type"] == "forbidden"
    assert from_page.json["details"][0]["loc"] == ["Origin"]
    assert refused_first
    assert from_backend.status == 200, from_backend.json
    assert len(provider.sent) == 1


def test_a_browser_key_still_needs_its_origin(provider: FakeProvider, api: Client) -> None:
    key = create_key(api, ["app.example.com"])["api_key"]

    assert send(api, {"x-api-key": key}).status == 401
    assert send(api, {"x-api-key": key, "Origin": "https://evil.example"}).status == 401


def test_allowed_ips_match_api_gateways_source_ip_never_x_forwarded_for(
    provider: FakeProvider, api: Client
) -> None:
    import app

    key = server_key(api, allowed_ips=["203.0.113.0/24", "2001:db8::/32"])

    def from_address(source_ip: str, **headers: str) -> int:
        event = rest_api_event(
            "POST",
            "/v1/mail",
            "/v1/mail",
            headers={"x-api-key": key, **JSON, **headers},
            body=seed_request(email_id=f"from-{source_ip}"),
            source_ip=source_ip,
        )
        return invoke(app.app, event).status

    assert from_address("203.0.113.50") == 200
    assert from_address("2001:db8::7") == 200
    assert from_address("198.51.100.1") == 403
    assert from_address("198.51.100.1", **{"X-Forwarded-For": "203.0.113.50"}) == 403
    assert len(provider.sent) == 2


def test_the_local_server_tells_the_app_its_peers_address(
    provider: FakeProvider, api: Client
) -> None:
    """Under ``make run`` the peer is the source address (any 127.x reaches 127.0.0.1)."""
    key = server_key(api, allowed_ips=[f"{PEER}/32"])
    headers = {"x-api-key": key}

    with serving() as url:
        allowed = raw_request(
            url,
            "POST",
            "/v1/mail",
            headers=headers,
            body=seed_request(),
            source_address="127.0.0.5",
        )
        refused = raw_request(
            url, "POST", "/v1/mail", headers=headers, body=seed_request(email_id="other")
        )

    assert allowed.status == 200, allowed.json
    assert refused.status == 403
    assert refused.json["details"][0]["loc"] == ["sourceIp"]


def test_kind_rules_are_checked(api: Client) -> None:
    def create(body: dict[str, Any]) -> int:
        answer = call(api, "POST", "/v1/api-key", headers=ADMIN_HEADERS, body={"name": "k", **body})
        return answer.status

    browser = create_key(api, ["app.example.com"])
    server = create_key(api, [], kind="server")

    assert create({"kind": "server", "origin_names": ["a.example.com"]}) == 422
    assert create({"origin_names": ["a.example.com"], "allowed_ips": ["10.0.0.0/8"]}) == 422
    assert create({"kind": "server", "allowed_ips": ["10.0.0.256/8"]}) == 422
    patch_browser = call(
        api,
        "PATCH",
        f"/v1/api-key/{browser['key_id']}",
        headers=ADMIN_HEADERS,
        body={"allowed_ips": ["10.0.0.0/8"]},
    )
    origins_on_server = call(
        api,
        "POST",
        f"/v1/api-key/{server['key_id']}/origins",
        headers=ADMIN_HEADERS,
        body={"origin_names": ["a.example.com"]},
    )
    patch_server = call(
        api,
        "PATCH",
        f"/v1/api-key/{server['key_id']}",
        headers=ADMIN_HEADERS,
        body={"allowed_ips": ["10.1.2.3/8"]},
    )

    assert patch_browser.status == 409
    assert origins_on_server.status == 409
    assert patch_server.status == 200
    assert patch_server.json["data"]["allowed_ips"] == ["10.0.0.0/8"]


# --- CAPTCHA ---------------------------------------------------------------------------


@pytest.fixture
def verifier() -> Iterator[Verifier]:
    with running_verifier() as running:
        yield running


@pytest.fixture
def captcha_key(wire: Wire, api: Client, verifier: Verifier) -> str:
    wire(
        sender=FakeProvider("fake"),
        captcha_provider="hcaptcha",
        captcha_secret=SECRET,
        captcha_verify_url=verifier.url,
    )
    key: str = create_key(api, ["app.example.com"], policy={"require_captcha": True})["api_key"]
    return key


def test_a_captcha_token_is_verified_with_the_siteverify_form(
    captcha_key: str, api: Client, verifier: Verifier, clean_database: str
) -> None:
    missing = send(api, mail_headers(captcha_key))
    bad = send(api, {**mail_headers(captcha_key), "X-Captcha-Token": "forged"})
    assert nothing_recorded(clean_database)
    good = send(api, {**mail_headers(captcha_key), "X-Captcha-Token": "good-token"})

    assert missing.status == 403
    assert missing.json["details"][0]["loc"] == ["X-Captcha-Token"]
    assert bad.status == 403
    assert bad.json["details"][0]["loc"] == ["X-Captcha-Token"]
    assert good.status == 200, good.json
    assert verifier.forms == [
        {"secret": SECRET, "response": "forged", "remoteip": "127.0.0.1"},
        {"secret": SECRET, "response": "good-token", "remoteip": "127.0.0.1"},
    ]


@pytest.mark.parametrize("mode", ["down", "garbage"])
def test_a_verifier_that_cannot_say_is_503_and_nothing_is_done(
    captcha_key: str, api: Client, verifier: Verifier, clean_database: str, mode: str
) -> None:
    verifier.mode = mode  # type: ignore[assignment]

    answer = send(api, {**mail_headers(captcha_key), "X-Captcha-Token": "good-token"})

    assert answer.status == 503
    assert answer.json["error_type"] == "service_unavailable"
    assert nothing_recorded(clean_database)


def test_an_unreachable_verifier_or_a_refused_secret_is_503(
    wire: Wire, api: Client, verifier: Verifier, clean_database: str
) -> None:
    for url, secret in (("http://127.0.0.1:9/siteverify", SECRET), (verifier.url, "wrong")):
        wire(
            sender=FakeProvider("fake"),
            captcha_provider="turnstile",
            captcha_secret=secret,
            captcha_verify_url=url,
            captcha_timeout_seconds=2,
        )
        key = create_key(api, ["app.example.com"], policy={"require_captcha": True})["api_key"]
        answer = send(api, {**mail_headers(key), "X-Captcha-Token": "good-token"})
        assert answer.status == 503, (url, answer.json)
    assert nothing_recorded(clean_database)


def test_captcha_settings_fail_at_start_up_when_incomplete(clean_database: str) -> None:
    with pytest.raises(ValueError, match="CAPTCHA_SECRET"):
        make_settings(clean_database, captcha_provider="turnstile")
    with pytest.raises(ValueError, match="CAPTCHA_PROVIDER"):
        make_settings(clean_database, captcha_secret="s3cret")
    assert isinstance(
        make_settings(clean_database, captcha_provider="recaptcha", captcha_secret_name="x"),
        Settings,
    )
