"""Test keys go through the whole pipeline but only ever reach the simulator."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from chalice.test import Client

from tests.integration.conftest import TlsFiles
from tests.integration.mail.conftest import Wire, mail_headers, seed_request
from tests.support.http import call, create_key
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues, consume_until_empty
from tests.support.smtp_server import SmtpTestServer, running_smtp_server

SIM = "simulator.amazonses.com"


@pytest.fixture
def smtp(tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpTestServer]:
    """A real SMTP server first in the chain, SES (moto) second."""
    with running_smtp_server(tls_files, "none") as server:
        monkeypatch.setenv("MAIL_PROVIDERS", "smtp,ses")
        monkeypatch.setenv("SMTP_HOST", server.host)
        monkeypatch.setenv("SMTP_PORT", str(server.port))
        monkeypatch.setenv("SMTP_SECURITY", "none")
        yield server


def test_a_test_key_runs_the_whole_lifecycle_without_a_real_provider(
    wire: Wire,
    api: Client,
    smtp: SmtpTestServer,
    moto: MotoServer,
    queues: Queues,
    clean_database: str,
) -> None:
    services = wire()
    key = create_key(api, ["app.example.com"], mode="test")["api_key"]
    assert key.startswith("ak_test_")
    single = call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(recipients=[{"mail": f"success@{SIM}", "emailRecipientId": "s"}]),
        headers=mail_headers(key),
    )
    mailboxes = ["bounce", "complaint+x", "ooto", "suppressionlist", "normal"]
    recipients = [
        {
            "mail": f"{box}@{SIM}" if box != "normal" else "someone@example.org",
            "emailRecipientId": box,
        }
        for box in mailboxes
    ]
    bulk = call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(email_id="bulk-1", recipients=recipients),
        headers=mail_headers(key),
    )
    consume_until_empty(services, queues)

    assert single.status == 200, single.json
    assert single.json["data"]["status"]["provider"] == "simulator"
    assert bulk.status == 202
    page = call(api, "GET", "/v1/mail/bulk-1", headers=mail_headers(key)).json["data"]
    statuses = {r["email_recipient_id"]: r["status"] for r in page["recipients"]}
    assert statuses == {
        "bounce": "bounced",
        "complaint+x": "complained",
        "ooto": "delivered",
        "suppressionlist": "bounced",
        "normal": "delivered",
    }
    ooto = call(api, "GET", "/v1/mail/bulk-1/recipients/ooto", headers=mail_headers(key))
    assert [e["type"] for e in ooto.json["data"]["events"]] == [
        "queued",
        "sent",
        "delivered",
        "auto_reply",
    ]
    listed = call(
        api, "GET", "/v1/mail/bulk-1/recipients/suppressionlist", headers=mail_headers(key)
    )
    assert "suppression list" in listed.json["data"]["status_detail"]
    lookup = call(api, "GET", "/v1/mail/msg-123", headers=mail_headers(key))
    assert lookup.json["data"]["recipients"][0]["status"] == "delivered"
    # Nothing reached a real provider, and test events never touch the suppression list.
    assert smtp.received == []
    assert moto.ses_sent_messages() == []
    with psycopg.connect(clean_database) as conn:
        assert conn.execute("SELECT count(*) FROM suppressions").fetchone() == (0,)
    reports = queues.drain_json(queues.result)
    assert sorted(r["status"] for r in reports if r["email_recipient_id"] == "complaint+x") == [
        "complained",
        "delivered",
        "sent",
    ]


def test_a_live_key_with_the_same_configuration_reaches_the_real_provider(
    wire: Wire, api: Client, api_key: str, smtp: SmtpTestServer
) -> None:
    wire()

    answer = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    assert answer.status == 200
    assert answer.json["data"]["status"]["provider"] == "smtp"
    assert [m.rcpt_tos for m in smtp.received] == [["john@example.com"]]
