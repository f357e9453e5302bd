"""Campaigns (SPEC 13) end to end: create, upload to S3 (moto, over HTTP), the bucket's
notification on the uploads queue, processing, the consumer sending, status and cancel."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.bootstrap import Container, build_container
from chalicelib.models.campaigns import CampaignChunk, CampaignStatus
from chalicelib.repositories.campaigns import CampaignRepository
from chalicelib.services.campaign_processing import CampaignProcessor
from chalicelib.services.paging import encode_cursor
from tests.conftest import make_settings
from tests.integration.mail.conftest import SENDER, Wire, mail_headers
from tests.support.campaigns import Uploads, create_uploads, handle_uploads, notifications, put_file
from tests.support.fake_providers import FakeProvider
from tests.support.http import ADMIN_HEADERS, Answer, call, create_key
from tests.support.moto_server import MotoServer
from tests.support.queues import Queues, consume_until_empty
from tests.support.round_trips import RoundTripCounter


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


def post_campaign(api: Client, key: str, **overrides: Any) -> Answer:
    return call(
        api, "POST", "/v1/campaigns", headers=mail_headers(key), body=campaign_body(**overrides)
    )


def create(api: Client, key: str, **overrides: Any) -> dict[str, Any]:
    answer = post_campaign(api, key, **overrides)
    assert answer.status == 201, answer.json
    data: dict[str, Any] = answer.json["data"]
    return data


def status(api: Client, key: str, campaign_id: str) -> dict[str, Any]:
    answer = call(api, "GET", f"/v1/campaigns/{campaign_id}", headers=mail_headers(key))
    assert answer.status == 200, answer.json
    data: dict[str, Any] = answer.json["data"]
    return data


def save_template(api: Client, html: str) -> str:
    """A stored template "News" with ``html``; its template_id."""
    saved = call(
        api,
        "POST",
        "/v1/templates",
        headers=ADMIN_HEADERS,
        body={"name": "News", "subject": "Hi {{name}}", "html": html},
    )
    assert saved.status == 201, saved.json
    template_id: str = saved.json["data"]["template_id"]
    return template_id


def upload_and_process(
    services: Container, api: Client, key: str, data: bytes, **overrides: Any
) -> dict[str, Any]:
    """Create a campaign, upload ``data`` with its URL, process it (as the upload handler
    does); the campaign's status afterwards."""
    created = create(api, key, **overrides)
    assert put_file(created["upload"], data).status_code == 200
    record = CampaignRepository(services.database).get(created["campaign_id"])
    assert record is not None
    services.campaign_processor.uploaded(record.upload_key, time.monotonic() + 60)
    return status(api, key, created["campaign_id"])


def lines(*rows: str) -> bytes:
    return ("\r\n".join(rows) + "\r\n").encode("utf-8")


def reports(queues: Queues) -> list[dict[str, Any]]:
    return queues.drain_json(queues.result)


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
    # The recipients are the email's, on the status lookup too.
    mail = call(api, "GET", "/v1/mail/campaign-1", headers=mail_headers(api_key))
    assert mail.json["data"]["count"] == 2


def test_csv_quoting_extra_columns_as_params_and_line_numbers(
    services: Container, api: Client, api_key: str, queues: Queues, provider: FakeProvider
) -> None:
    data = lines(
        "emailRecipientId,mail,name,plan",
        'r-1,ann@example.org,"Ann ""the first""",gold',
        'r-2,ben@example.org,Ben,"silver,',
        'with a line break"',
        "r-3,not-an-address,Cy,bronze",
    )
    final = upload_and_process(
        services,
        api,
        api_key,
        data,
        subject="{{name}}",
        html_template="<p>{{name}}: {{plan}}</p>",
        skip_invalid=True,
    )
    consume_until_empty(services, queues)

    assert final["rows"] == {"total": 3, "valid": 2, "invalid": 1}
    # r-2's quoted value spans two lines: r-3 starts on line 5.
    assert final["errors"] == [
        {
            "line": 5,
            "email_recipient_id": "r-3",
            "field": "mail",
            "message": final["errors"][0]["message"],
        }
    ]
    bodies = sorted(m.html for m in provider.sent)
    assert bodies[0] == "<p>Ann &#34;the first&#34;: gold</p>"
    assert bodies[1] == "<p>Ben: silver,\r\nwith a line break</p>"


def test_jsonl_rows_with_params_and_the_emails_params(
    services: Container, api: Client, api_key: str, queues: Queues, provider: FakeProvider
) -> None:
    rows = [
        {"mail": "ann@example.org", "name": "Ann", "params": {"code": "A1"}},
        {"mail": "ben@example.org", "emailRecipientId": "ben", "params": {"code": "B2"}},
    ]
    data = "\n".join(json.dumps(r) for r in rows).encode() + b"\n\n"
    final = upload_and_process(
        services,
        api,
        api_key,
        data,
        format="jsonl",
        subject="{{greeting}} {{name}}",
        html_template="<p>code {{code}}</p>",
        params={"greeting": "Hello"},
    )
    consume_until_empty(services, queues)

    final = status(api, api_key, final["campaign_id"])
    assert final["rows"] == {"total": 2, "valid": 2, "invalid": 0}
    assert final["status"] == "completed"
    assert sorted((m.subject, m.html) for m in provider.sent) == [
        ("Hello ", "<p>code B2</p>"),
        ("Hello Ann", "<p>code A1</p>"),
    ]


def test_an_invalid_row_fails_the_whole_file_with_line_numbers(
    services: Container, api: Client, api_key: str, queues: Queues, provider: FakeProvider
) -> None:
    data = lines(
        "mail,name,emailRecipientId,code",
        "ann@example.org,Ann,r-1,1",
        "bad@,Bad,r-2,2",
        "cy@example.org,Cy,r-1,3",  # the same recipient id as line 2
        "dan@example.org,Dan,r-4,",  # the template needs {{code}}
        'eve@example.org,"Eve\nwith a break",r-5,5',
    )
    final = upload_and_process(
        services, api, api_key, data, html_template="<p>{{name}} {{code}}</p>"
    )
    consume_until_empty(services, queues)

    assert final["status"] == "failed"
    assert final["rows"] == {"total": 5, "valid": 1, "invalid": 4}
    assert final["error_count"] == 4
    assert [(e["line"], e["email_recipient_id"], e["field"]) for e in final["errors"]] == [
        (3, "r-2", "mail"),
        (4, "r-1", "emailRecipientId"),
        (5, "r-4", "code"),
        (6, "r-5", "name"),
    ]
    assert final["counts"] == {k: 0 for k in final["counts"]}
    assert provider.sent == []
    assert queues.count(queues.processing) == 0


def test_with_skip_invalid_the_invalid_rows_are_skipped_and_listed(
    services: Container, api: Client, api_key: str, queues: Queues, provider: FakeProvider
) -> None:
    data = lines(
        "mail,emailRecipientId",
        "ann@example.org,r-1",
        "x@y,r-2",
        "ann2@example.org,r-1",
        "ben@example.org,r-3",
    )
    final = upload_and_process(services, api, api_key, data, skip_invalid=True)
    consume_until_empty(services, queues)

    final = status(api, api_key, final["campaign_id"])
    assert final["status"] == "completed"
    assert final["rows"] == {"total": 4, "valid": 2, "invalid": 2}
    assert [e["line"] for e in final["errors"]] == [3, 4]
    assert sorted(m.to[0].email for m in provider.sent) == ["ann@example.org", "ben@example.org"]


def test_suppressed_rows_are_suppressed_and_reported(
    services: Container, api: Client, api_key: str, queues: Queues, provider: FakeProvider
) -> None:
    suppressed = call(
        api,
        "POST",
        "/v1/suppressions",
        headers=ADMIN_HEADERS,
        body={"addresses": ["Ben@Example.org"]},
    )
    assert suppressed.status == 200
    final = upload_and_process(
        services, api, api_key, lines("mail", "ann@example.org", "ben@example.org")
    )
    # Recorded as suppressed when fanned out, never queued.
    assert (final["counts"]["queued"], final["counts"]["suppressed"]) == (1, 1)
    consume_until_empty(services, queues)

    final = status(api, api_key, final["campaign_id"])
    assert final["counts"]["sent"] == 1
    assert final["counts"]["suppressed"] == 1
    assert final["status"] == "completed"
    assert [m.to[0].email for m in provider.sent] == ["ann@example.org"]
    reported = {r["status"]: r for r in reports(queues)}
    assert sorted(reported) == ["sent", "suppressed"]
    assert reported["suppressed"]["result"]["status_detail"] == (
        "suppressed: the address is on the suppression list (manual)"
    )


def test_the_keys_policy_refuses_rows_and_counts_the_file_against_its_quota(
    services: Container, api: Client, queues: Queues, provider: FakeProvider
) -> None:
    key = create_key(
        api,
        ["app.example.com"],
        policy={"allowed_recipient_domains": ["example.org"], "daily_recipient_quota": 2},
    )["api_key"]
    final = upload_and_process(
        services,
        api,
        key,
        lines("mail", "ann@example.org", "mallory@elsewhere.net", "ben@example.org"),
        skip_invalid=True,
    )
    assert final["errors"][0]["line"] == 3
    assert "example.org" in final["errors"][0]["message"]
    assert final["rows"]["valid"] == 2

    over = upload_and_process(
        services, api, key, lines("mail", "cy@example.org"), email_id="campaign-2"
    )

    assert over["status"] == "failed"
    assert over["errors"][0]["field"] == "daily_recipient_quota"
    consume_until_empty(services, queues)
    assert len(provider.sent) == 2


def test_a_file_over_the_size_limit_is_refused(
    wire: Wire, api: Client, api_key: str, uploads: Uploads, provider: FakeProvider
) -> None:
    services = wire(sender=provider, campaign_bucket=uploads.bucket, campaign_max_bytes=64)
    created = create(api, api_key)
    assert created["upload"]["max_bytes"] == 64

    final = upload_and_process(
        services, api, api_key, lines("mail", *[f"r{i}@example.org" for i in range(10)])
    )

    assert final["status"] == "failed"
    assert "CAMPAIGN_MAX_BYTES" in final["errors"][0]["message"]
    assert provider.sent == []


def test_a_file_that_is_not_utf8_or_has_no_mail_column_fails(
    services: Container, api: Client, api_key: str
) -> None:
    latin = upload_and_process(
        services, api, api_key, "mail\r\nzoë@example.org\r\n".encode("latin-1")
    )
    no_mail = upload_and_process(
        services, api, api_key, lines("email", "a@example.org"), email_id="c-2"
    )

    assert latin["status"] == no_mail["status"] == "failed"
    assert "UTF-8" in latin["errors"][0]["message"]
    assert no_mail["errors"] == [
        {
            "line": 1,
            "email_recipient_id": None,
            "field": "file",
            "message": "the header row has no 'mail' column",
        }
    ]


def test_scheduled_then_cancelled_sends_nothing_and_reports_each_row_once(
    services: Container,
    api: Client,
    api_key: str,
    queues: Queues,
    provider: FakeProvider,
    clean_database: str,
) -> None:
    later = "2099-01-01T00:00:00Z"
    too_far = post_campaign(api, api_key, send_at=later)
    assert too_far.status == 422

    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    final = upload_and_process(
        services, api, api_key, lines("mail", "ann@example.org", "ben@example.org"), send_at=soon
    )
    assert final["status"] == "scheduled"
    services.campaigns.tick(time.monotonic() + 30)  # not due: nothing moves
    assert status(api, api_key, final["campaign_id"])["status"] == "scheduled"

    cancelled = call(
        api, "POST", f"/v1/campaigns/{final['campaign_id']}/cancel", headers=mail_headers(api_key)
    )
    assert cancelled.status == 200
    assert cancelled.json["data"]["status"] == "cancelled"
    assert cancelled.json["data"]["counts"]["cancelled"] == 2
    with psycopg.connect(clean_database) as conn:  # even were it due now
        conn.execute("UPDATE campaigns SET send_at = now() - interval '1 minute'")
    services.campaigns.tick(time.monotonic() + 30)
    consume_until_empty(services, queues)

    assert provider.sent == []
    assert sorted(r["status"] for r in reports(queues)) == ["cancelled", "cancelled"]
    history = call(
        api,
        "GET",
        f"/v1/mail/{final['email_id']}/recipients/ann@example.org",
        headers=mail_headers(api_key),
    ).json["data"]
    assert [e["type"] for e in history["events"]] == ["queued", "cancelled"]
    assert history["status"] == "cancelled"
    again = call(
        api, "POST", f"/v1/campaigns/{final['campaign_id']}/cancel", headers=mail_headers(api_key)
    )
    assert again.status == 409


def test_a_scheduled_campaign_is_queued_by_the_tick_once_due(
    services: Container,
    api: Client,
    api_key: str,
    queues: Queues,
    provider: FakeProvider,
    clean_database: str,
) -> None:
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    final = upload_and_process(
        services, api, api_key, lines("mail", "ann@example.org"), send_at=soon
    )
    consume_until_empty(services, queues)
    assert provider.sent == []
    with psycopg.connect(clean_database) as conn:
        conn.execute("UPDATE campaigns SET send_at = now() - interval '1 second'")

    services.campaigns.tick(time.monotonic() + 30)
    consume_until_empty(services, queues)

    assert [m.to[0].email for m in provider.sent] == ["ann@example.org"]
    services.campaigns.tick(time.monotonic() + 30)  # completes it, nobody reading
    stored = CampaignRepository(services.database).get(final["campaign_id"])
    assert stored is not None
    assert stored.status.value == "completed"


def test_a_completed_campaign_cannot_be_cancelled_and_others_are_not_found(
    services: Container, api: Client, api_key: str, queues: Queues
) -> None:
    final = upload_and_process(services, api, api_key, lines("mail", "ann@example.org"))
    consume_until_empty(services, queues)
    campaign_id = final["campaign_id"]

    assert (
        call(
            api, "POST", f"/v1/campaigns/{campaign_id}/cancel", headers=mail_headers(api_key)
        ).status
        == 409
    )
    other = create_key(api, ["app.example.com"])["api_key"]
    assert (
        call(api, "GET", f"/v1/campaigns/{campaign_id}", headers=mail_headers(other)).status == 404
    )
    assert call(api, "GET", "/v1/campaigns", headers=mail_headers(other)).json["data"] == {
        "campaigns": [],
        "next_cursor": None,
    }


def test_the_list_pages_newest_first(services: Container, api: Client, api_key: str) -> None:
    ids = [create(api, api_key, email_id=f"c-{i}")["campaign_id"] for i in range(3)]

    first = call(api, "GET", "/v1/campaigns?limit=2", headers=mail_headers(api_key)).json["data"]
    cursor = first["next_cursor"]
    second = call(
        api, "GET", f"/v1/campaigns?limit=2&cursor={cursor}", headers=mail_headers(api_key)
    ).json["data"]

    assert [c["campaign_id"] for c in first["campaigns"]] == ids[::-1][:2]
    assert [c["campaign_id"] for c in second["campaigns"]] == ids[:1]
    assert second["next_cursor"] is None


def test_the_same_create_request_answers_the_same_campaign_until_its_file_arrives(
    services: Container, api: Client, api_key: str
) -> None:
    first = create(api, api_key)
    again = create(api, api_key)
    assert again["campaign_id"] == first["campaign_id"]

    other = post_campaign(api, api_key, subject="Another subject")
    assert other.status == 400
    assert put_file(first["upload"], lines("mail", "a@example.org")).status_code == 200
    record = CampaignRepository(services.database).get(first["campaign_id"])
    assert record is not None
    services.campaign_processor.uploaded(record.upload_key, time.monotonic() + 60)
    late = call(api, "POST", "/v1/campaigns", headers=mail_headers(api_key), body=campaign_body())
    assert late.status == 409


def test_a_status_read_is_one_statement_whatever_the_size(
    services: Container,
    api: Client,
    api_key: str,
    queues: Queues,
    clean_database: str,
    wire: Wire,
    uploads: Uploads,
) -> None:
    data = lines("mail", *[f"r{i}@example.org" for i in range(300)])
    final = upload_and_process(services, api, api_key, data)
    consume_until_empty(services, queues, max_rounds=40)
    key_id = uuid.UUID(_key_id(clean_database))
    # The read that finds no row left queued marks it completed (two statements, once).
    assert status(api, api_key, final["campaign_id"])["status"] == "completed"

    with RoundTripCounter(clean_database) as counter:
        counted = build_container(
            make_settings(counter.conninfo, campaign_bucket=uploads.bucket),
            sender=FakeProvider("fake"),
        )
        try:
            counted.database.ping()  # the pool's connection is open before counting
            before = counter.round_trips
            campaign = counted.campaigns.get(key_id, final["campaign_id"])
            reads = counter.round_trips - before
        finally:
            counted.close()

    assert reads == 1
    assert {status: n for status, n in campaign.counts.items() if n} == {"sent": 300}


def _key_id(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM api_keys ORDER BY created_at LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])


def test_the_local_upload_server_is_told_which_uploads_to_refuse(
    services: Container, api: Client, api_key: str
) -> None:
    created = create(api, api_key)
    record = CampaignRepository(services.database).get(created["campaign_id"])
    assert record is not None

    assert services.campaigns.upload_refusal("uploads/nobody.csv") == (
        404,
        "no campaign awaits an upload at uploads/nobody.csv",
    )
    assert services.campaigns.upload_refusal(record.upload_key) is None
    assert put_file(created["upload"], lines("mail", "a@example.org")).status_code == 200
    services.campaign_processor.uploaded(record.upload_key, time.monotonic() + 60)
    assert services.campaigns.upload_refusal(record.upload_key) == (
        409,
        f"campaign {record.id} is sending: already uploaded",
    )


def test_a_test_keys_campaign_reaches_only_the_simulator(
    services: Container, api: Client, queues: Queues, provider: FakeProvider
) -> None:
    key = create_key(api, ["app.example.com"], mode="test")["api_key"]
    final = upload_and_process(services, api, key, lines("mail", "ann@example.org"))
    consume_until_empty(services, queues)

    final = status(api, key, final["campaign_id"])
    assert provider.sent == []
    assert final["status"] == "completed"
    assert final["counts"]["delivered"] == 1
    assert [r["result"]["provider"] for r in reports(queues) if r["status"] == "sent"] == [
        "simulator"
    ]


def test_the_refusals_name_the_campaign_and_why(
    services: Container, api: Client, api_key: str
) -> None:
    campaign_id = create(api, api_key)["campaign_id"]
    other = post_campaign(api, api_key, skip_invalid=True)
    missing = call(api, "GET", "/v1/campaigns/cmp_nope", headers=mail_headers(api_key))
    cancel = f"/v1/campaigns/{campaign_id}/cancel"
    assert call(api, "POST", cancel, headers=mail_headers(api_key)).status == 200
    again = call(api, "POST", cancel, headers=mail_headers(api_key))
    late = call(api, "POST", "/v1/campaigns", headers=mail_headers(api_key), body=campaign_body())

    assert (other.status, other.json["message"], other.json["details"]) == (
        400,
        "email_id 'campaign-1' already names a campaign with other settings"
        " (format, send_at, skip_invalid); use a new email_id",
        {"email_id": "campaign-1", "campaign_id": campaign_id},
    )
    assert (missing.status, missing.json["message"]) == (
        404,
        "No campaign 'cmp_nope' for this API key",
    )
    assert (again.status, again.json["message"], again.json["details"]) == (
        409,
        f"campaign {campaign_id} is cancelled: it cannot be cancelled",
        {"campaign_id": campaign_id, "status": "cancelled"},
    )
    assert (late.status, late.json["message"], late.json["details"]) == (
        409,
        f"campaign {campaign_id} of email_id 'campaign-1' already has its file (cancelled);"
        " use a new email_id",
        {"campaign_id": campaign_id, "status": "cancelled"},
    )


def test_send_at_may_be_30_days_ahead_not_more(
    services: Container, api: Client, api_key: str
) -> None:
    def at(seconds: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))

    month = 30 * 86400
    too_far = post_campaign(api, api_key, send_at=at(month + 120))
    within = create(api, api_key, email_id="c-2", send_at=at(month - 120))

    assert (too_far.status, too_far.json["message"], too_far.json["details"]) == (
        422,
        "send_at is more than 30 days ahead",
        [{"type": "send_at", "loc": ["send_at"], "msg": "at most 30 days ahead", "input": None}],
    )
    assert within["status"] == "awaiting_upload"


def test_without_an_upload_store_campaigns_are_unavailable(
    wire: Wire, api: Client, api_key: str
) -> None:
    wire(sender=FakeProvider("fake"))  # no CAMPAIGN_BUCKET

    answer = call(api, "POST", "/v1/campaigns", headers=mail_headers(api_key), body=campaign_body())

    assert (answer.status, answer.json["message"]) == (
        503,
        "campaigns need an upload store: set CAMPAIGN_BUCKET (see README, Campaigns)",
    )
    listed = call(api, "GET", "/v1/campaigns", headers=mail_headers(api_key))
    assert listed.json["data"]["campaigns"] == []  # nothing was created


def test_the_tick_counts_the_due_campaigns_and_stops_at_its_deadline(
    services: Container, api: Client, api_key: str, clean_database: str
) -> None:
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    final = upload_and_process(
        services, api, api_key, lines("mail", "ann@example.org"), send_at=soon
    )
    with psycopg.connect(clean_database) as conn:
        conn.execute("UPDATE campaigns SET send_at = now() - interval '1 second'")

    assert services.campaigns.tick(time.monotonic() - 1) == 1  # looked at, no time to start it
    assert status(api, api_key, final["campaign_id"])["status"] == "scheduled"
    assert services.campaigns.tick(time.monotonic() + 30) == 1
    assert status(api, api_key, final["campaign_id"])["status"] == "sending"


def test_a_tick_looks_at_50_due_campaigns_at_most(services: Container, clean_database: str) -> None:
    """The rest wait for the next minute's tick (a tick must fit its Lambda's time)."""
    with psycopg.connect(clean_database) as conn:
        conn.execute(
            "INSERT INTO campaigns (id, api_key_id, email_id, format, skip_invalid, status,"
            " upload_key)"
            " SELECT 'cmp_' || lpad(g::text, 32, '0'), %s, 'e-' || g, 'csv', false,"
            " 'validating', 'uploads/' || g || '.csv' FROM generate_series(1, 51) g",
            (uuid.uuid4(),),
        )

    assert services.campaigns.tick(time.monotonic() - 1) == 50  # looked at, none started


def test_the_emails_pass_through_fields_reach_every_rows_report(
    services: Container, api: Client, api_key: str, queues: Queues, provider: FakeProvider
) -> None:
    final = upload_and_process(
        services,
        api,
        api_key,
        lines("mail", "ann@example.org", "ben@example.org"),
        client_env_id="env-1",
        projectId="project-2",
        closureId="closure-3",
        metadata={"batch": "b-4"},
    )
    consume_until_empty(services, queues)

    sent = [r for r in reports(queues) if r["status"] == "sent"]
    assert sorted(r["recipient"] for r in sent) == ["ann@example.org", "ben@example.org"]
    assert {
        (r["email_id"], r["client_env_id"], r["projectId"], r["closureId"], str(r["metadata"]))
        for r in sent
    } == {(final["email_id"], "env-1", "project-2", "closure-3", "{'batch': 'b-4'}")}


def test_uploaded_answers_its_campaign_and_ignores_an_upload_no_campaign_waits_for(
    services: Container, api: Client, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    created = create(api, api_key)
    assert put_file(created["upload"], lines("mail", "a@example.org")).status_code == 200
    key = f"uploads/{created['campaign_id']}.csv"

    assert services.campaign_processor.uploaded("uploads/nobody.csv", time.monotonic() + 60) is None
    assert (
        services.campaign_processor.uploaded(key, time.monotonic() + 60) == created["campaign_id"]
    )
    warned = [r for r in caplog.records if r.name == "mmms.campaigns" and r.levelname == "WARNING"]
    assert [(r.getMessage(), getattr(r, "key", None)) for r in warned] == [
        ("an upload no campaign waits for", "uploads/nobody.csv")
    ]
    assert status(api, api_key, created["campaign_id"])["status"] == "sending"


def test_a_file_of_exactly_the_size_limit_is_read_one_byte_more_is_refused(
    wire: Wire, api: Client, api_key: str, uploads: Uploads, provider: FakeProvider
) -> None:
    data = lines("mail", "a@example.org")
    services = wire(sender=provider, campaign_bucket=uploads.bucket, campaign_max_bytes=len(data))

    exact = upload_and_process(services, api, api_key, data)
    over = upload_and_process(services, api, api_key, data + b"\r\n", email_id="c-2")

    assert exact["status"] == "sending"
    assert over["status"] == "failed"
    assert over["errors"] == [
        {
            "line": 0,
            "email_recipient_id": None,
            "field": "file",
            "message": f"the file is {len(data) + 2} bytes; CAMPAIGN_MAX_BYTES is {len(data)}",
        }
    ]


def test_a_file_with_a_header_and_no_rows_fails(
    services: Container, api: Client, api_key: str
) -> None:
    final = upload_and_process(services, api, api_key, lines("mail,name"))

    assert final["status"] == "failed"
    assert final["errors"] == [
        {"line": 0, "email_recipient_id": None, "field": "file", "message": "the file has no rows"}
    ]


def test_the_first_100_errors_are_listed_in_line_order_all_counted(
    services: Container, api: Client, api_key: str
) -> None:
    bad = [f"bad-{i},r-{i}" for i in range(101)]
    plain = upload_and_process(
        services, api, api_key, lines("mail,emailRecipientId", *bad), skip_invalid=True
    )
    # A duplicate is found once the whole file is read, and listed in its line's place.
    with_duplicate = upload_and_process(
        services,
        api,
        api_key,
        lines("mail,emailRecipientId", "a@example.org,r-a", "b@example.org,r-a", *bad[:100]),
        skip_invalid=True,
        email_id="c-2",
    )

    assert plain["rows"] == {"total": 101, "valid": 0, "invalid": 101}
    assert plain["error_count"] == 101
    assert [e["line"] for e in plain["errors"]] == list(range(2, 102))
    assert with_duplicate["rows"] == {"total": 102, "valid": 1, "invalid": 101}
    assert with_duplicate["error_count"] == 101
    assert [e["line"] for e in with_duplicate["errors"]] == list(range(3, 103))
    assert with_duplicate["errors"][0] == {
        "line": 3,
        "email_recipient_id": "r-a",
        "field": "emailRecipientId",
        "message": "the same recipient as an earlier line",
    }


def test_a_stored_templates_campaign_records_the_template_on_each_row(
    services: Container, api: Client, api_key: str, clean_database: str
) -> None:
    template_id = save_template(api, "<p>{{code}}</p>")
    body = {"template_id": template_id, "subject": None, "html_template": None}
    final = upload_and_process(
        services, api, api_key, lines("mail,code", "ann@example.org,A1"), **body
    )

    assert final["status"] == "sending"
    with psycopg.connect(clean_database) as conn:
        stored = conn.execute("SELECT template_id, template_version FROM deliveries").fetchall()
    assert stored == [(template_id, 1)]


def test_a_page_of_exactly_the_limit_has_no_cursor_and_a_foreign_cursor_starts_over(
    services: Container, api: Client, api_key: str
) -> None:
    ids = [create(api, api_key, email_id=f"c-{i}")["campaign_id"] for i in range(3)]

    def page(query: str) -> dict[str, Any]:
        answer = call(api, "GET", f"/v1/campaigns?{query}", headers=mail_headers(api_key))
        assert answer.status == 200, answer.json
        data: dict[str, Any] = answer.json["data"]
        return data

    exact = page("limit=3")
    foreign = page(f"limit=3&cursor={encode_cursor('not-a-sequence')}")

    assert [c["campaign_id"] for c in exact["campaigns"]] == ids[::-1]
    assert exact["next_cursor"] is None
    assert foreign == exact


def test_an_upload_gone_or_no_upload_store_fails_the_campaign(
    wire: Wire, api: Client, api_key: str, uploads: Uploads, provider: FakeProvider
) -> None:
    services = wire(sender=provider, campaign_bucket=uploads.bucket)
    gone = create(api, api_key)
    assert put_file(gone["upload"], lines("mail", "a@example.org")).status_code == 200
    key = f"uploads/{gone['campaign_id']}.csv"
    uploads.s3.delete_object(Bucket=uploads.bucket, Key=key)
    services.campaign_processor.uploaded(key, time.monotonic() + 60)
    storeless = create(api, api_key, email_id="c-2")
    record = CampaignRepository(services.database).get(storeless["campaign_id"])
    assert record is not None
    without_store = CampaignProcessor(
        CampaignRepository(services.database),
        services.deliveries,
        services.delivery,
        services.processing_queue,
        None,
        max_bytes=1000,
    )
    without_store.uploaded(record.upload_key, time.monotonic() + 60)

    for campaign_id in (gone["campaign_id"], storeless["campaign_id"]):
        final = status(api, api_key, campaign_id)
        assert final["status"] == "failed"
        assert final["errors"] == [
            {
                "line": 0,
                "email_recipient_id": None,
                "field": "file",
                "message": "the uploaded file is gone",
            }
        ]


@pytest.mark.parametrize("problem", ["not utf-8", "gone"])
def test_processing_a_file_that_fails_leaves_nothing_to_do(
    services: Container, api: Client, api_key: str, uploads: Uploads, problem: str
) -> None:
    created = create(api, api_key)
    data = "mail\r\nzoë@example.org\r\n".encode("latin-1") if problem == "not utf-8" else b"mail\n"
    assert put_file(created["upload"], data).status_code == 200
    if problem == "gone":
        key = f"uploads/{created['campaign_id']}.csv"
        uploads.s3.delete_object(Bucket=uploads.bucket, Key=key)
    CampaignRepository(services.database).move(
        created["campaign_id"],
        CampaignStatus.VALIDATING,
        only_from=[CampaignStatus.AWAITING_UPLOAD],
    )

    done = services.campaign_processor.process(created["campaign_id"], time.monotonic() + 60)

    assert done is True  # failed: no later tick has anything left to do
    assert status(api, api_key, created["campaign_id"])["status"] == "failed"


def test_one_invalid_row_fails_a_file_and_the_verdict_is_logged(
    services: Container, api: Client, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mmms.campaigns")
    final = upload_and_process(
        services, api, api_key, lines("mail", "a@example.org", "b@", "c@example.org")
    )

    assert final["status"] == "failed"
    assert final["rows"] == {"total": 3, "valid": 2, "invalid": 1}
    logged = [r for r in caplog.records if r.getMessage() == "campaign validated"]
    fields = ("levelname", "campaign_id", "status", "rows", "invalid")
    assert [tuple(getattr(r, f, None) for f in fields) for r in logged] == [
        ("INFO", final["campaign_id"], "failed", 3, 1)
    ]


def test_processing_a_campaign_scheduled_later_has_nothing_to_do_yet(
    services: Container, api: Client, api_key: str
) -> None:
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    final = upload_and_process(
        services, api, api_key, lines("mail", "ann@example.org"), send_at=soon
    )

    processed = services.campaign_processor.process(final["campaign_id"], time.monotonic() + 30)

    assert processed is True
    assert status(api, api_key, final["campaign_id"])["status"] == "scheduled"


def test_the_same_scheduled_or_jsonl_request_answers_the_same_campaign(
    services: Container, api: Client, api_key: str
) -> None:
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    scheduled = [create(api, api_key, send_at=soon)["campaign_id"] for _ in range(2)]
    jsonl = [create(api, api_key, email_id="c-2", format="jsonl")["campaign_id"] for _ in range(2)]

    assert scheduled[0] == scheduled[1]
    assert jsonl[0] == jsonl[1] != scheduled[0]


@pytest.mark.parametrize("value", ["name", "mail", "company", "emailRecipientId"])
def test_a_template_over_the_budget_for_every_recipient_is_refused_at_create(
    services: Container, api: Client, api_key: str, value: str
) -> None:
    """The templates are rendered once at create for a sample recipient whose every value
    is text: a template that no recipient could fit in a message is refused before the file."""
    template = f"<p>{{{{ {value} * 1000000000 }}}}</p>"

    answer = post_campaign(api, api_key, html_template=template)

    assert answer.status == 413, answer.json
    assert "MAX_MESSAGE_BYTES" in json.dumps(answer.json["details"])
    listed = call(api, "GET", "/v1/campaigns", headers=mail_headers(api_key))
    assert listed.json["data"]["campaigns"] == []


def test_the_configured_message_limit_holds_at_create(
    wire: Wire, api: Client, api_key: str, uploads: Uploads, provider: FakeProvider
) -> None:
    wire(sender=provider, campaign_bucket=uploads.bucket, max_message_bytes=10_000)

    over = call(
        api,
        "POST",
        "/v1/campaigns",
        headers=mail_headers(api_key),
        body=campaign_body(html_template="<p>{{ name * 1000 }}</p>"),  # about 16 KB
    )

    assert over.status == 413, over.json
    assert "10000 bytes" in json.dumps(over.json["details"])


def test_the_same_create_request_after_a_new_template_version_answers_the_same_campaign(
    services: Container, api: Client, api_key: str
) -> None:
    template_id = save_template(api, "<p>v1</p>")
    body = {"template_id": template_id, "subject": None, "html_template": None}
    first = create(api, api_key, **body)
    changed = call(
        api,
        "PUT",
        f"/v1/templates/{template_id}",
        headers=ADMIN_HEADERS,
        body={"name": "News", "subject": "Hi {{name}}", "html": "<p>v2</p>"},
    )
    assert changed.status == 200, changed.json

    again = create(api, api_key, **body)

    assert again["campaign_id"] == first["campaign_id"]


@pytest.mark.parametrize("field", ["text_template", "subject"])
def test_a_param_only_one_template_uses_is_required_of_each_row(
    services: Container, api: Client, api_key: str, field: str
) -> None:
    final = upload_and_process(
        services,
        api,
        api_key,
        lines("mail,code", "ann@example.org,A1", "ben@example.org,"),
        skip_invalid=True,
        **{field: "Your code: {{code}}"},
    )

    assert final["rows"] == {"total": 2, "valid": 1, "invalid": 1}
    assert [(e["line"], e["field"]) for e in final["errors"]] == [(3, "code")]


def test_a_batch_of_chunks_reads_its_rows_and_each_emails_content_once(
    services: Container,
    api: Client,
    api_key: str,
    clean_database: str,
    uploads: Uploads,
) -> None:
    data = lines("mail", *[f"r{i}@example.org" for i in range(20)])
    final = upload_and_process(services, api, api_key, data)
    chunks = [
        CampaignChunk(campaign_id=final["campaign_id"], first_line=2, last_line=11),
        CampaignChunk(campaign_id=final["campaign_id"], first_line=12, last_line=21),
    ]

    with RoundTripCounter(clean_database) as counter:
        counted = build_container(
            make_settings(counter.conninfo, campaign_bucket=uploads.bucket),
            sender=FakeProvider("fake"),
        )
        try:
            counted.database.ping()
            before = counter.round_trips
            jobs = counted.campaigns.chunk_jobs(chunks)
            reads = counter.round_trips - before
        finally:
            counted.close()

    assert reads == 2  # the chunks' rows, then the email's content
    assert [[job.recipient_email for job in chunk] for chunk in jobs] == [
        [f"r{i}@example.org" for i in range(10)],
        [f"r{i}@example.org" for i in range(10, 20)],
    ]
