"""The status lookup's reads on the real database (``DeliveryStatusRepository``): which rows a
page, a count, a recipient lookup and the dev outbox's lookup select, and a recipient's stored
provider events in order. The API tests read these through the routes; here each filter is
pinned on its own, next to rows it must leave out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from chalicelib.bootstrap import Container
from chalicelib.models.mail import DeliveryState
from chalicelib.repositories.delivery_rows import NewDelivery
from tests.support.recording import record_sent

KEY = uuid.UUID("11111111-1111-1111-1111-111111111111")
OTHER_KEY = uuid.UUID("22222222-2222-2222-2222-222222222222")
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def insert(services: Container, key: uuid.UUID | None, email_id: str, *ids: str) -> None:
    services.deliveries.insert_new(
        key,
        [
            NewDelivery(email_id=email_id, email_recipient_id=rid, recipient=f"{rid}@ex.org")
            for rid in ids
        ],
    )


def mark_sent(services: Container, email_id: str, *ids: str) -> None:
    with services.database.transaction() as conn:
        conn.execute(
            "UPDATE deliveries SET status = 'sent', sent_at = now()"
            " WHERE email_id = %s AND email_recipient_id = ANY(%s)",
            (email_id, list(ids)),
        )


def store_events(
    services: Container, delivery_id: uuid.UUID, *events: tuple[str, datetime]
) -> None:
    with services.database.transaction() as conn:
        for number, (kind, at) in enumerate(events):
            conn.execute(
                "INSERT INTO delivery_events (delivery_id, type, at, provider, detail, event_key)"
                " VALUES (%s, %s, %s, 'ses', %s, %s)",
                (delivery_id, kind, at, f"{kind} detail", f"{kind}-{number}"),
            )


def test_a_page_holds_one_keys_recipients_of_one_email_in_order_after_the_cursor(
    services: Container,
) -> None:
    insert(services, KEY, "e-1", "r-3", "r-1", "r-4", "r-2")
    insert(services, KEY, "e-2", "r-0")  # another email of the key
    insert(services, OTHER_KEY, "e-1", "r-0")  # the same email id under another key
    insert(services, None, "e-1", "r-00")  # and with no key at all
    mark_sent(services, "e-1", "r-2", "r-4")
    reads = services.delivery_status

    def page(
        key: uuid.UUID | None,
        *,
        status: DeliveryState | None = None,
        after: str | None = None,
        limit: int = 10,
    ) -> list[str]:
        rows = reads.page(key, "e-1", status=status, after=after, limit=limit)
        return [row.email_recipient_id for row in rows]

    assert page(KEY) == ["r-1", "r-2", "r-3", "r-4"]
    assert page(KEY, after="r-2") == ["r-3", "r-4"]
    assert page(KEY, limit=2) == ["r-1", "r-2"]
    assert page(KEY, after="r-4") == []
    assert page(KEY, status=DeliveryState.SENT) == ["r-2", "r-4"]
    assert page(KEY, status=DeliveryState.SENT, after="r-2") == ["r-4"]
    assert page(KEY, status=DeliveryState.QUEUED, limit=1) == ["r-1"]
    assert page(OTHER_KEY) == ["r-0"]
    assert page(None) == ["r-00"]
    [first] = reads.page(KEY, "e-1", status=None, after=None, limit=1)
    assert (first.email_id, first.recipient, first.status) == (
        "e-1",
        "r-1@ex.org",
        DeliveryState.QUEUED,
    )


def test_counts_are_of_one_keys_email_and_status(services: Container) -> None:
    insert(services, KEY, "e-1", "r-1", "r-2", "r-3", "r-4")
    insert(services, KEY, "e-2", "r-1")
    insert(services, OTHER_KEY, "e-1", "r-1", "r-2")
    insert(services, None, "e-1", "r-1")
    mark_sent(services, "e-1", "r-2", "r-4")
    reads = services.delivery_status

    assert reads.count(KEY, "e-1", None) == 4
    assert reads.count(KEY, "e-1", DeliveryState.SENT) == 2
    assert reads.count(KEY, "e-1", DeliveryState.QUEUED) == 2
    assert reads.count(KEY, "e-1", DeliveryState.BOUNCED) == 0
    assert reads.count(KEY, "e-2", None) == 1
    assert reads.count(OTHER_KEY, "e-1", None) == 2
    assert reads.count(None, "e-1", None) == 1
    assert reads.count(KEY, "nope", None) == 0


def test_a_recipient_is_found_only_under_its_key_and_email(services: Container) -> None:
    insert(services, KEY, "e-1", "r-1", "r-2")
    insert(services, KEY, "e-2", "r-9")
    reads = services.delivery_status

    found = reads.recipient(KEY, "e-1", "r-2")

    assert found is not None
    assert (found.email_id, found.email_recipient_id, found.recipient) == (
        "e-1",
        "r-2",
        "r-2@ex.org",
    )
    assert reads.recipient(OTHER_KEY, "e-1", "r-2") is None
    assert reads.recipient(None, "e-1", "r-2") is None
    assert reads.recipient(KEY, "e-2", "r-2") is None
    assert reads.recipient(KEY, "e-1", "r-9") is None


def test_a_recipients_events_come_oldest_first_and_only_its_own(services: Container) -> None:
    insert(services, KEY, "e-1", "r-1", "r-2")
    reads = services.delivery_status
    one = reads.recipient(KEY, "e-1", "r-1")
    two = reads.recipient(KEY, "e-1", "r-2")
    assert one is not None
    assert two is not None
    # Stored out of order; two at the same instant keep the order they were stored in.
    store_events(
        services,
        one.id,
        ("complaint", AT + timedelta(seconds=2)),
        ("delivery", AT),
        ("open", AT + timedelta(seconds=1)),
        ("click", AT + timedelta(seconds=1)),
    )
    store_events(services, two.id, ("bounce", AT - timedelta(seconds=1)))

    events = reads.events_of(one.id)

    assert [(e.type, e.at) for e in events] == [
        ("delivery", AT),
        ("open", AT + timedelta(seconds=1)),
        ("click", AT + timedelta(seconds=1)),
        ("complaint", AT + timedelta(seconds=2)),
    ]
    assert (events[0].provider, events[0].detail) == ("ses", "delivery detail")
    assert [e.type for e in reads.events_of(one.id, limit=2)] == ["delivery", "open"]
    assert [e.type for e in reads.events_of(two.id)] == ["bounce"]


def test_a_recipients_events_are_read_a_thousand_at_most(services: Container) -> None:
    insert(services, KEY, "e-1", "r-1")
    row = services.delivery_status.recipient(KEY, "e-1", "r-1")
    assert row is not None
    with services.database.transaction() as conn:
        conn.execute(
            "INSERT INTO delivery_events (delivery_id, type, at, provider, event_key)"
            " SELECT %s, 'open', %s::timestamptz + n * interval '1 second', 'ses', 'open-' || n"
            " FROM generate_series(1, 1001) AS n",
            (row.id, AT),
        )

    events = services.delivery_status.events_of(row.id)

    assert len(events) == 1000
    assert events[-1].at == AT + timedelta(seconds=1000)  # the oldest thousand


def test_the_outbox_finds_the_rows_sent_as_the_message_ids_it_asks_for(
    services: Container,
) -> None:
    record_sent(services, "a@example.org", "m-1")
    record_sent(services, "b@example.org", "m-2")
    record_sent(services, "c@example.org", "m-3")

    found = services.delivery_status.by_message_ids(["m-1", "m-2", "m-unknown"])

    assert {mid: row.recipient for mid, row in found.items()} == {
        "m-1": "a@example.org",
        "m-2": "b@example.org",
    }
    assert services.delivery_status.by_message_ids([]) == {}
