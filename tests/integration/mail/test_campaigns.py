"""Campaigns (SPEC 13) end to end: create, upload to S3 (moto, over HTTP), the bucket's
notification on the uploads queue, processing, the consumer sending, status and cancel."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client

from chalicelib.bootstrap import Container
from tests.integration.mail.conftest import SENDER, Wire, mail_headers
from tests.support.campaigns import Uploads, create_uploads, handle_uploads, notifications, put_file
from tests.support.fake_providers import FakeProvider
from tests.support.http import call
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues, consume_until_empty


@pytest.fixture
def uploads(moto: MotoServer, queues: Queues) -> Uploads:
    return create_uploads(moto)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider("fake")


@pytest.fixture
def services(wire: Wire, uploads: Uploads, provider: FakeProvider) -> Container:
    return wire(sender=provider, campaign_bucket=uploads.bucket)


def campaign_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sender_email": SENDER,
        "sender_name": "News",
        "subject": "Hello {{name}}",
        "html_template": "<p>Hi {{name}} of {{company}}</p>",
        "email_id": "campaign-1",
    }
    body.update(overrides)
    return body


def create(api: Client, key: str, **overrides: Any) -> dict[str, Any]:
    answer = call(
        api, "POST", "/v1/campaigns", headers=mail_headers(key), body=campaign_body(**overrides)
    )
    assert answer.status == 201, answer.json
    data: dict[str, Any] = answer.json["data"]
    return data


def status(api: Client, key: str, campaign_id: str) -> dict[str, Any]:
    answer = call(api, "GET", f"/v1/campaigns/{campaign_id}", headers=mail_headers(key))
    assert answer.status == 200, answer.json
    data: dict[str, Any] = answer.json["data"]
    return data


def test_a_csv_campaign_is_uploaded_notified_validated_and_sent(
    services: Container,
    api: Client,
    api_key: str,
    uploads: Uploads,
    queues: Queues,
    provider: FakeProvider,
) -> None:
    created = create(api, api_key)
    assert created["status"] == "awaiting_upload"
    assert created["upload"]["method"] == "PUT"
    data = b'\xef\xbb\xbfmail,name,company\r\nann@example.org,Ann,"A, Inc."\r\n'
    data += b"ben@example.org,Ben,B\r\n"

    assert put_file(created["upload"], data).status_code == 200
    sent = notifications(uploads)  # S3's test event when configured, then the upload
    assert [n.get("Event") for n in sent] == ["s3:TestEvent", None]
    assert sent[1]["Records"][0]["s3"]["object"]["key"].endswith(".csv")
    assert handle_uploads(services, uploads) == 2
    consume_until_empty(services, queues)

    final = status(api, api_key, created["campaign_id"])
    assert final["status"] == "completed"
    assert final["rows"] == {"total": 2, "valid": 2, "invalid": 0}
    assert final["counts"]["sent"] == 2
    assert sorted(m.to[0].email for m in provider.sent) == ["ann@example.org", "ben@example.org"]
    assert "Hi Ann of A, Inc." in next(m.html for m in provider.sent if m.to[0].name == "Ann")
