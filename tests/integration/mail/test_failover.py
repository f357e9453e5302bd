"""Failover through the API with real provider adapters against local imitations."""

from __future__ import annotations

import json

import boto3
import psycopg
import pytest
from chalice.test import Client

from tests.integration.mail.conftest import Wire, mail_headers, seed_request
from tests.support.http import call
from tests.support.http_provider_server import (
    MAILGUN_API_KEY,
    MAILGUN_DOMAIN,
    SENDGRID_API_KEY,
    FakeProviderApi,
)
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues, consume_until_empty
from tests.support.smtp_server import unused_port


@pytest.fixture
def chain_env(provider_api: FakeProviderApi, monkeypatch: pytest.MonkeyPatch) -> FakeProviderApi:
    """MAIL_PROVIDERS=mailgun,sendgrid, both pointing at the local imitation."""
    for name, value in {
        "MAIL_PROVIDERS": "mailgun,sendgrid",
        "MAILGUN_API_KEY": MAILGUN_API_KEY,
        "MAILGUN_DOMAIN": MAILGUN_DOMAIN,
        "MAILGUN_BASE_URL": provider_api.base_url,
        "SENDGRID_API_KEY": SENDGRID_API_KEY,
        "SENDGRID_BASE_URL": provider_api.base_url,
        # Generous: a loaded machine must not turn a slow answer into a failover. The tests
        # of a hanging provider shorten it.
        "PROVIDER_TIMEOUT_SECONDS": "5",
    }.items():
        monkeypatch.setenv(name, value)
    provider_api.hang_seconds = 2.0
    return provider_api


def stored_provider(database: str) -> str | None:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT provider FROM deliveries").fetchone()
    return row[0] if row else None


@pytest.mark.parametrize("outage", ["unavailable", "timeout"])
def test_primary_down_the_secondary_sends_and_the_caller_gets_200(
    wire: Wire,
    api: Client,
    api_key: str,
    chain_env: FakeProviderApi,
    queues: Queues,
    clean_database: str,
    outage: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if outage == "timeout":
        monkeypatch.setenv("PROVIDER_TIMEOUT_SECONDS", "0.5")  # the provider hangs for 2 s
    wire()
    chain_env.script("mailgun", outage)  # type: ignore[arg-type]

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 200, answer.json
    assert answer.json["data"]["status"]["provider"] == "sendgrid"
    assert len(chain_env.requests_to("mailgun")) == 1
    assert len(chain_env.requests_to("sendgrid")) == 1
    assert stored_provider(clean_database) == "sendgrid"
    [result] = queues.drain_json(queues.result)
    assert result["result"]["provider"] == "sendgrid"


def test_a_throttled_primary_is_retried_not_failed_over(
    wire: Wire,
    api: Client,
    api_key: str,
    chain_env: FakeProviderApi,
    clean_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROVIDER_THROTTLE_BASE_DELAY_SECONDS", "0.01")
    wire()
    chain_env.script("mailgun", "throttled", times=2)

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 200, answer.json
    assert answer.json["data"]["status"]["provider"] == "mailgun"
    assert len(chain_env.requests_to("mailgun")) == 3
    assert chain_env.requests_to("sendgrid") == []
    assert stored_provider(clean_database) == "mailgun"


def test_lasting_throttling_queues_the_recipient_without_failing_over(
    wire: Wire,
    api: Client,
    api_key: str,
    chain_env: FakeProviderApi,
    queues: Queues,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROVIDER_THROTTLE_BASE_DELAY_SECONDS", "0.01")
    wire()
    chain_env.script("mailgun", "throttled", times=10)

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 202, answer.json
    assert answer.json["data"]["status"]["status"] == "queued"
    assert len(chain_env.requests_to("mailgun")) == 4  # the send and 3 retries
    assert chain_env.requests_to("sendgrid") == []
    assert queues.count(queues.processing) == 1  # the queue retries it later


def test_smtp_refusing_connections_fails_over(
    wire: Wire,
    api: Client,
    api_key: str,
    chain_env: FakeProviderApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAIL_PROVIDERS", "smtp,sendgrid")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(unused_port()))
    monkeypatch.setenv("SMTP_SECURITY", "none")
    wire()

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 200
    assert answer.json["data"]["status"]["provider"] == "sendgrid"


def test_a_rejection_does_not_fail_over(
    wire: Wire, api: Client, api_key: str, chain_env: FakeProviderApi, queues: Queues
) -> None:
    wire()
    chain_env.script("mailgun", "invalid_recipient")

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 400
    assert answer.json["details"]["provider"] == "mailgun"
    assert chain_env.requests_to("sendgrid") == []
    assert [r["status"] for r in queues.drain_json(queues.result)] == ["failed"]


def test_all_down_is_queued_then_sent_exactly_once_when_one_is_back(
    wire: Wire, api: Client, api_key: str, chain_env: FakeProviderApi, queues: Queues
) -> None:
    services = wire()
    chain_env.script("mailgun", "unavailable")
    chain_env.script("sendgrid", "unavailable")

    first = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))
    assert first.status == 202
    consume_until_empty(services, queues)
    consume_until_empty(services, queues)
    again = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    # mailgun: 503, then accepted by the consumer; sendgrid: 503 once; nothing after that.
    assert len(chain_env.requests_to("mailgun")) == 2
    assert len(chain_env.requests_to("sendgrid")) == 1
    assert again.status == 200
    assert again.json["data"]["status"]["provider"] == "mailgun"
    assert [r["status"] for r in queues.drain_json(queues.result)] == ["sent"]


def test_provider_credentials_can_come_from_secrets_manager(
    wire: Wire,
    api: Client,
    api_key: str,
    provider_api: FakeProviderApi,
    moto: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    boto3.client(
        "secretsmanager", endpoint_url=moto.endpoint_url, region_name=moto.region
    ).create_secret(
        Name="mmms/providers", SecretString=json.dumps({"SENDGRID_API_KEY": SENDGRID_API_KEY})
    )
    monkeypatch.setenv("MAIL_PROVIDERS", "sendgrid")
    monkeypatch.setenv("SENDGRID_BASE_URL", provider_api.base_url)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    wire(provider_secret_name="mmms/providers")

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 200
    [request] = provider_api.requests_to("sendgrid")
    assert request.headers["authorization"] == f"Bearer {SENDGRID_API_KEY}"


def test_a_misconfigured_primary_fails_over_instead_of_failing_the_email(
    wire: Wire,
    api: Client,
    api_key: str,
    chain_env: FakeProviderApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAIL_PROVIDERS", "sendgrid,mailgun")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.rotated-and-forgotten")
    wire()

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 200
    assert answer.json["data"]["status"]["provider"] == "mailgun"
