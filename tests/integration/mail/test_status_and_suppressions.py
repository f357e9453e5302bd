"""Status lookup (paged, per key) and the suppression list's admin API."""

from __future__ import annotations

import uuid

import pytest
from chalice.test import Client

from chalicelib.bootstrap import Container
from chalicelib.repositories.delivery_rows import NewDelivery
from tests.integration.mail.conftest import Wire, mail_headers, seed_request, three_recipients
from tests.support.fake_providers import FakeProvider
from tests.support.http import ADMIN_HEADERS, call, create_key
from tests.support.queues import Queues, consume_until_empty


def key_id_of(services: Container, key: str) -> uuid.UUID:
    caller = services.api_keys.authenticate(key, "https://app.example.com")
    return caller.key_id


def test_statuses_page_through_ten_thousand_recipients(
    wire: Wire, api: Client, api_key: str
) -> None:
    services = wire(sender=FakeProvider("fake"))
    owner = key_id_of(services, api_key)
    services.deliveries.insert_new(
        owner,
        [
            NewDelivery(email_id="big", email_recipient_id=f"r-{i:05}", recipient=f"u{i}@ex.org")
            for i in range(10_000)
        ],
    )
    with services.database.transaction() as conn:  # every 10th recipient has been sent
        conn.execute(
            "UPDATE deliveries SET status = 'sent', sent_at = now()"
            " WHERE email_id = 'big' AND right(email_recipient_id, 1) = '0'"
        )

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=1000" + (f"&cursor={cursor}" if cursor else "")
        answer = call(api, "GET", f"/v1/mail/big?{query}", headers=mail_headers(api_key))
        assert answer.status == 200, answer.json
        data = answer.json["data"]
        assert data["count"] == 10_000
        seen += [r["email_recipient_id"] for r in data["recipients"]]
        pages += 1
        cursor = data["next_cursor"]
        if cursor is None:
            break

    assert pages == 10
    assert seen == [f"r-{i:05}" for i in range(10_000)]
    sent = call(api, "GET", "/v1/mail/big?status=sent&limit=600", headers=mail_headers(api_key))
    assert sent.json["data"]["count"] == 1000
    assert len(sent.json["data"]["recipients"]) == 600
    assert {r["status"] for r in sent.json["data"]["recipients"]} == {"sent"}


def test_a_key_sees_only_its_own_emails(
    wire: Wire, api: Client, api_key: str, queues: Queues
) -> None:
    wire(sender=FakeProvider("fake"))
    sent = call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))
    assert sent.status == 200
    other = create_key(api, ["app.example.com"])["api_key"]

    mine = call(api, "GET", "/v1/mail/msg-123", headers=mail_headers(api_key))
    theirs = call(api, "GET", "/v1/mail/msg-123", headers=mail_headers(other))
    recipient = call(
        api, "GET", "/v1/mail/msg-123/recipients/recipient-123", headers=mail_headers(other)
    )
    missing = call(api, "GET", "/v1/mail/nope", headers=mail_headers(api_key))

    assert mine.status == 200
    assert mine.json["data"]["recipients"][0]["status"] == "sent"
    assert mine.json["data"]["next_cursor"] is None
    assert (theirs.status, recipient.status, missing.status) == (404, 404, 404)
    assert theirs.json["error_type"] == "not_found"


def test_a_recipient_shows_its_history_oldest_first(
    wire: Wire, api: Client, api_key: str, queues: Queues
) -> None:
    services = wire(sender=FakeProvider("fake"))
    call(
        api,
        "POST",
        "/v1/mail",
        body=seed_request(recipients=three_recipients()),
        headers=mail_headers(api_key),
    )
    consume_until_empty(services, queues)

    answer = call(api, "GET", "/v1/mail/msg-123/recipients/r-2", headers=mail_headers(api_key))

    assert answer.status == 200
    data = answer.json["data"]
    assert data["recipient"] == "bob@example.org"
    assert data["status"] == "sent"
    assert [(e["type"], e["provider"]) for e in data["events"]] == [
        ("queued", None),
        ("sent", "fake"),
    ]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "status=lost",
        "cursor=%25%25",
        "cursor=a.b",
        "cursor=+m",
        "colour=red",
    ],
)
def test_bad_lookup_parameters_are_422(wire: Wire, api: Client, api_key: str, query: str) -> None:
    wire(sender=FakeProvider("fake"))
    call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(api_key))

    answer = call(api, "GET", f"/v1/mail/msg-123?{query}", headers=mail_headers(api_key))

    assert answer.status == 422
    assert answer.json["error_type"] == "validation_error"


def test_the_suppression_list_admin_api(api: Client) -> None:
    added = call(
        api,
        "POST",
        "/v1/suppressions",
        body={"addresses": ["Zed@Example.org", "amy@example.org", "zed@example.org"]},
        headers=ADMIN_HEADERS,
    )
    assert added.status == 200, added.json
    assert [(s["address"], s["reason"]) for s in added.json["data"]["added"]] == [
        ("zed@example.org", "manual"),
        ("amy@example.org", "manual"),
    ]
    first = call(api, "GET", "/v1/suppressions?limit=1", headers=ADMIN_HEADERS)
    cursor = first.json["data"]["next_cursor"]
    second = call(api, "GET", f"/v1/suppressions?limit=1&cursor={cursor}", headers=ADMIN_HEADERS)
    looked_up = call(api, "GET", "/v1/suppressions?address=ZED@example.org", headers=ADMIN_HEADERS)
    deleted = call(api, "DELETE", "/v1/suppressions/Zed@example.org", headers=ADMIN_HEADERS)
    again = call(api, "DELETE", "/v1/suppressions/zed@example.org", headers=ADMIN_HEADERS)
    anonymous = call(api, "GET", "/v1/suppressions")
    invalid = call(
        api,
        "POST",
        "/v1/suppressions",
        body={"addresses": ["not-an-address"]},
        headers=ADMIN_HEADERS,
    )

    assert [s["address"] for s in first.json["data"]["suppressions"]] == ["amy@example.org"]
    assert [s["address"] for s in second.json["data"]["suppressions"]] == ["zed@example.org"]
    assert [s["address"] for s in looked_up.json["data"]["suppressions"]] == ["zed@example.org"]
    assert deleted.status == 200
    assert deleted.json["data"] == {"deleted": True, "address": "zed@example.org"}
    assert again.status == 404
    assert again.json["message"] == "zed@example.org is not on the suppression list"
    assert anonymous.status == 401
    assert invalid.status == 422


def test_adding_a_listed_address_again_returns_it_with_its_first_reason(wire: Wire) -> None:
    services = wire(sender=FakeProvider("fake"))
    services.suppressions.add(["old@example.org"], "bounce")

    listed = services.suppressions.add(["new@example.org", "OLD@example.org"], "manual")

    assert [(s.address, s.reason) for s in listed] == [
        ("new@example.org", "manual"),
        ("old@example.org", "bounce"),
    ]
