"""The app wired to moto's SES and SQS (over HTTP) and the test database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.bootstrap import Container, build_container, use_container
from mmms_local import gateway
from tests.conftest import make_settings
from tests.support.http import create_key
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues, create_queues

SENDER = "support@example.com"
ORIGIN = "https://app.example.com"

Wire = Callable[..., Container]


@pytest.fixture
def queues(moto: MotoServer) -> Queues:
    moto.verify_ses_identity(SENDER)
    return create_queues(moto, max_receives=3)


@pytest.fixture
def wire(
    clean_database: str, moto: MotoServer, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Wire]:
    """Build and install a container; with no ``sender`` the real chain is used (SES on moto).

    One is built straight away (so fixtures can create keys); calling ``wire(...)`` again
    replaces it.
    """
    monkeypatch.setenv("MAIL_PROVIDERS", "ses")
    # moto's account sends 1 email/s: paced to it, every test send would wait a second.
    monkeypatch.setenv("SES_MAX_SEND_RATE", "1000")
    built: list[Container] = []

    def build(sender: Any = None, **overrides: Any) -> Container:
        settings = make_settings(
            overrides.pop("database_url", clean_database),  # e.g. through an outage proxy
            **{
                "mail_queue_url": queues.processing,
                "mail_result_queue_url": queues.result,
                "aws_endpoint_url": moto.endpoint_url,
                "aws_region": moto.region,
                "retry_base_delay_seconds": 0,
                "mail_queue_max_receives": 3,
                **overrides,
            },
        )
        container = build_container(settings, sender=sender)
        use_container(container)
        built.append(container)
        return container

    build()
    yield build
    use_container(None)
    for container in built:
        container.close()


@pytest.fixture
def api(wire: Wire) -> Iterator[Client]:
    gateway.install()
    import app

    with Client(app.app) as client:
        yield client


@pytest.fixture
def api_key(api: Client) -> str:
    key: str = create_key(api, ["app.example.com"])["api_key"]
    return key


def mail_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "Origin": ORIGIN, "Content-Type": "application/json"}


def seed_request(**overrides: Any) -> dict[str, Any]:
    """The seed's example POST /v1/mail body."""
    body: dict[str, Any] = {
        "recipients": [
            {
                "name": "John Doe",
                "mail": "john@example.com",
                "company": "Acme Corp",
                "emailRecipientId": "recipient-123",
            }
        ],
        "sender_name": "Support Team",
        "sender_email": SENDER,
        "sender_organisation_name": "Acme Corp",
        "subject": "Test Email",
        "html_template": "<html><body><h1>Hello {{name}}</h1></body></html>",
        "client_env_id": "env-123",
        "email_id": "msg-123",
        "emailRecipientId": "recipient-123",
        "projectId": "project-456",
        "closureId": "closure-789",
    }
    body.update(overrides)
    return body


def three_recipients() -> list[dict[str, str]]:
    return [
        {"name": "Alice", "mail": "alice@example.org", "emailRecipientId": "r-1"},
        {"name": "<b>Bob & Co</b>", "mail": "bob@example.org", "emailRecipientId": "r-2"},
        {
            "name": "Carol",
            "mail": "carol@example.org",
            "company": "C Ltd",
            "emailRecipientId": "r-3",
        },
    ]
