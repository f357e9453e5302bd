"""One provider event applied to the recipient rows sent as its message id
(``DeliveryEventRepository.apply_event``) on the real database: the event stored once per
row, the status moved only from the statuses given and only for the rows the event
concerns, the report marked pending with the move, and two events for one row at once
taking turns on it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from chalicelib.bootstrap import Container
from chalicelib.db import Database
from chalicelib.models.lifecycle import TRANSITIONS, EventKind
from chalicelib.models.mail import DeliveryState
from chalicelib.repositories.delivery_events import DeliveryEventRepository, EventApplied
from chalicelib.repositories.delivery_rows import Delivery
from tests.support.recording import record_sent
from tests.support.waiting import wait_until

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def apply(
    repo: DeliveryEventRepository,
    message_id: str,
    kind: EventKind,
    *,
    key: str | None = None,
    detail: str | None = None,
    concerns: Callable[[Delivery], bool] = lambda _row: True,
    **fields: Any,
) -> list[EventApplied]:
    """Apply ``kind`` as the event service does (its status move from ``TRANSITIONS``)."""
    moves_to, moves_from = TRANSITIONS.get(kind, (None, frozenset()))
    values: dict[str, Any] = {
        "event_type": kind.value,
        "at": AT,
        "provider": "ses",
        "detail": detail,
        "event_key": key or f"{kind.value}-1",
        "concerns": concerns,
        "moves_to": moves_to,
        "moves_from": moves_from,
        **fields,
    }
    return repo.apply_event(message_id, **values)


def stored_events(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT d.recipient, e.type, e.at, e.provider, e.detail, e.event_key"
            " FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id"
            " ORDER BY e.id"
        ).fetchall()


def row_now(database_url: str, delivery_id: uuid.UUID) -> tuple[Any, ...]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT status, status_detail, result_pending FROM deliveries WHERE id = %s",
            (delivery_id,),
        ).fetchone()
    assert found is not None
    return tuple(found)


def test_an_event_is_stored_and_moves_the_status_with_its_report_pending(
    services: Container, clean_database: str
) -> None:
    sent = record_sent(services, "a@example.org", "m-1")
    services.deliveries.results_published([sent])  # the "sent" report went out
    other = record_sent(services, "b@example.org", "m-2")
    repo = DeliveryEventRepository(services.database)

    [applied] = apply(repo, "m-1", EventKind.BOUNCED, detail="550 no such user")

    assert (applied.new, applied.changed) == (True, True)
    after = applied.delivery
    assert (after.id, after.status, after.status_detail, after.result_pending) == (
        sent.id,
        DeliveryState.BOUNCED,
        "550 no such user",
        True,
    )
    assert after.updated_at is not None
    assert sent.updated_at is not None
    assert after.updated_at > sent.updated_at
    assert row_now(clean_database, sent.id) == ("bounced", "550 no such user", True)
    assert row_now(clean_database, other.id)[0] == "sent"
    assert stored_events(clean_database) == [
        ("a@example.org", "bounced", AT, "ses", "550 no such user", "bounced-1")
    ]


def test_the_same_event_twice_is_stored_once_and_changes_nothing_more(
    services: Container, clean_database: str
) -> None:
    sent = record_sent(services, "a@example.org", "m-1")
    repo = DeliveryEventRepository(services.database)
    apply(repo, "m-1", EventKind.DELIVERED)
    services.deliveries.results_published(services.deliveries.pending_results(10))

    [again] = apply(repo, "m-1", EventKind.DELIVERED)

    assert (again.new, again.changed) == (False, False)
    assert (again.delivery.id, again.delivery.status) == (sent.id, DeliveryState.DELIVERED)
    assert row_now(clean_database, sent.id) == ("delivered", None, False)
    assert len(stored_events(clean_database)) == 1


def test_an_event_is_kept_but_moves_nothing_it_may_not_move(
    services: Container, clean_database: str
) -> None:
    sent = record_sent(services, "a@example.org", "m-1")
    services.deliveries.results_published([sent])
    repo = DeliveryEventRepository(services.database)

    # Not a status (a delay); not about this row's recipient (a cc's bounce); not from this
    # status (a "delivered" after a bounce).
    [delayed] = apply(repo, "m-1", EventKind.DELAYED, detail="greylisted")
    [cc_bounce] = apply(repo, "m-1", EventKind.BOUNCED, concerns=lambda _row: False)
    [bounce] = apply(repo, "m-1", EventKind.BOUNCED, key="bounced-2")
    [late] = apply(repo, "m-1", EventKind.DELIVERED, detail="250 ok")

    assert [(a.new, a.changed) for a in (delayed, cc_bounce, bounce, late)] == [
        (True, False),
        (True, False),
        (True, True),
        (True, False),
    ]
    assert (delayed.delivery.status, cc_bounce.delivery.status) == (DeliveryState.SENT,) * 2
    assert late.delivery.status is DeliveryState.BOUNCED
    assert row_now(clean_database, sent.id) == ("bounced", None, True)
    assert [(e[1], e[4]) for e in stored_events(clean_database)] == [
        ("delayed", "greylisted"),
        ("bounced", None),
        ("bounced", None),
        ("delivered", "250 ok"),
    ]


def test_an_event_applies_to_every_row_sent_as_its_message_id_in_row_order(
    services: Container, clean_database: str
) -> None:
    first = record_sent(services, "a@example.org", "m-1", email_id="e-1")
    second = record_sent(services, "b@example.org", "m-1", email_id="e-2")
    record_sent(services, "c@example.org", "m-2")
    repo = DeliveryEventRepository(services.database)

    applied = apply(
        repo, "m-1", EventKind.COMPLAINED, concerns=lambda row: row.recipient == "b@example.org"
    )

    expected = sorted([(first.id, DeliveryState.SENT), (second.id, DeliveryState.COMPLAINED)])
    assert [(a.delivery.id, a.delivery.status) for a in applied] == expected
    assert [a.new for a in applied] == [True, True]
    assert apply(repo, "m-unknown", EventKind.DELIVERED) == []


def sessions_waiting_for_a_lock(database_url: str, application_name: str) -> int:
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND wait_event_type = 'Lock'",
            (application_name,),
        ).fetchone()
    assert found is not None
    return int(found[0])


def test_a_bounce_arriving_while_a_delivery_is_applied_waits_and_is_not_overwritten(
    services: Container, clean_database: str
) -> None:
    """The delivery is held inside its transaction (its ``concerns`` blocks) while the bounce
    arrives: the bounce must wait for the row, else the delivery, which read ``sent``, would
    overwrite the bounce once it goes on."""
    sent = record_sent(services, "a@example.org", "m-1")
    name = f"mmms-bounce-{uuid.uuid4().hex[:8]}"
    bounces = Database(make_conninfo(clean_database, application_name=name))
    delivery_holds_the_row = threading.Event()
    let_the_delivery_go = threading.Event()

    def held(_row: Delivery) -> bool:
        delivery_holds_the_row.set()
        assert let_the_delivery_go.wait(timeout=10)
        return True

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            delivered = pool.submit(
                apply,
                DeliveryEventRepository(services.database),
                "m-1",
                EventKind.DELIVERED,
                concerns=held,
            )
            assert delivery_holds_the_row.wait(timeout=10)
            bounced = pool.submit(apply, DeliveryEventRepository(bounces), "m-1", EventKind.BOUNCED)
            wait_until(
                lambda: bounced.done() or sessions_waiting_for_a_lock(clean_database, name) == 1,
                "the bounce to wait for the row (or to be applied)",
            )
            let_the_delivery_go.set()
            [delivery] = delivered.result(timeout=10)
            [bounce] = bounced.result(timeout=10)
    finally:
        bounces.close()

    assert (delivery.changed, delivery.delivery.status) == (True, DeliveryState.DELIVERED)
    assert (bounce.changed, bounce.delivery.status) == (True, DeliveryState.BOUNCED)
    assert row_now(clean_database, sent.id)[0] == "bounced"
