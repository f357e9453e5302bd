"""``DeliveryRepository`` on the real database: what it records, finds and hands to the sweep.

The statements are read through their outcomes (the rows stored, the rows returned), each
against what the module promises: an email's content first write wins, a recipient recorded
once, the daily quota counting only rows inserted now, the sweep's reads oldest first within
their limit.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from chalicelib.bootstrap import Container
from chalicelib.models.mail import DeliveryState
from chalicelib.repositories.deliveries import DailyCharge, QuotaExceeded
from chalicelib.repositories.delivery_rows import NewDelivery
from tests.integration.mail.conftest import Wire
from tests.support.fake_providers import FakeProvider
from tests.support.recording import lease

KEY = uuid.UUID("0b5d1f5e-7a4e-4f59-9a55-000000000001")
OTHER_KEY = uuid.UUID("0b5d1f5e-7a4e-4f59-9a55-000000000002")


@pytest.fixture
def services(wire: Wire) -> Container:
    return wire(sender=FakeProvider("fake"))


def row(rid: str, email_id: str = "news-1", **fields: object) -> NewDelivery:
    return NewDelivery(
        email_id=email_id,
        email_recipient_id=rid,
        recipient=f"{rid}@example.org",
        **fields,  # type: ignore[arg-type]
    )


def recipients_today(database: str, key: uuid.UUID) -> int:
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "SELECT recipients FROM key_daily_usage WHERE api_key_id = %s", (key,)
        ).fetchone()
    return int(found[0]) if found else 0


def age(database: str, column: str, by_rid: dict[str, int]) -> None:
    """Set ``column`` of each recipient's row that many minutes in the past."""
    with psycopg.connect(database) as conn:
        for rid, minutes in by_rid.items():
            statement = sql.SQL(
                "UPDATE deliveries SET {} = now() - make_interval(mins => %s)"
                " WHERE email_recipient_id = %s"
            ).format(sql.Identifier(column))
            conn.execute(statement, (minutes, rid))


# --- recording -----------------------------------------------------------------------------


def test_an_emails_content_is_kept_once_per_key_and_the_first_write_wins(
    services: Container,
) -> None:
    repo = services.deliveries

    first = repo.save_email(KEY, "news-1", {"subject": "first"})
    second = repo.save_email(KEY, "news-1", {"subject": "second"})
    other = repo.save_email(OTHER_KEY, "news-1", {"subject": "other key"})
    keyless = repo.save_email(None, "news-1", {"subject": "outside producer"})

    assert (first, second, other, keyless) == (
        {"subject": "first"},
        {"subject": "first"},
        {"subject": "other key"},
        {"subject": "outside producer"},
    )
    assert repo.email_content(KEY, "news-1") == {"subject": "first"}
    assert repo.email_content(None, "news-1") == {"subject": "outside producer"}
    assert repo.email_content(KEY, "news-2") is None


def test_a_recipient_is_recorded_once_with_every_field_it_was_given(
    services: Container, clean_database: str
) -> None:
    repo = services.deliveries
    queued_at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    first = row(
        "ann",
        client_env_id="env-1",
        project_id="p-1",
        closure_id="c-1",
        metadata={"team": "blue"},
        recipient_name="Ann",
        recipient_company="Acme",
        queued_at=queued_at,
        dispatched=True,
        test_mode=True,
        template_id="tpl-1",
        template_version=4,
        recipient_params={"code": "A1"},
    )
    listed = row("bea", suppressed="on the suppression list (bounce)")

    inserted = repo.insert_new(KEY, [first, listed])
    again = repo.insert_new(KEY, [row("ann"), row("cid")])

    assert sorted(inserted) == ["ann", "bea"]
    assert sorted(again) == ["cid"]  # ann was recorded already: not inserted, not returned
    ann = repo.find(KEY, "news-1", "ann")
    assert inserted["ann"] == ann
    assert (
        ann.api_key_id,
        ann.email_id,
        ann.recipient,
        ann.recipient_name,
        ann.recipient_company,
        ann.status,
        ann.client_env_id,
        ann.project_id,
        ann.closure_id,
        ann.metadata,
        ann.queued_at,
        ann.test_mode,
        ann.template_id,
        ann.template_version,
        ann.recipient_params,
        ann.status_detail,
        ann.result_pending,
        ann.attempts,
    ) == (
        KEY,
        "news-1",
        "ann@example.org",
        "Ann",
        "Acme",
        DeliveryState.QUEUED,
        "env-1",
        "p-1",
        "c-1",
        {"team": "blue"},
        queued_at,
        True,
        "tpl-1",
        4,
        {"code": "A1"},
        None,
        False,
        0,
    )
    assert ann.dispatched_at is not None
    bea = inserted["bea"]
    # The email's fields are the first row's, for every row; the rest are each row's own.
    assert (
        bea.status,
        bea.status_detail,
        bea.result_pending,
        bea.dispatched_at is not None,
        bea.test_mode,
        bea.client_env_id,
        bea.recipient_name,
        bea.metadata,
        bea.recipient_params,
    ) == (
        DeliveryState.SUPPRESSED,
        "on the suppression list (bounce)",
        True,
        True,
        True,
        "env-1",
        None,
        {},
        {},
    )
    with psycopg.connect(clean_database) as conn:
        stored = conn.execute(
            "SELECT email_recipient_id, metadata, recipient_params FROM deliveries"
            " ORDER BY email_recipient_id"
        ).fetchall()
    assert stored == [
        ("ann", {"team": "blue"}, {"code": "A1"}),
        ("bea", {}, {}),
        ("cid", {}, {}),
    ]


def test_rows_are_found_under_their_own_key_only(services: Container) -> None:
    repo = services.deliveries
    mine = repo.insert_new(KEY, [row("ann"), row("bea")])
    keyless = repo.insert_new(None, [row("ann")])

    assert sorted(repo.find_many(KEY, "news-1", ["ann", "bea", "zed"])) == ["ann", "bea"]
    assert repo.find_many(OTHER_KEY, "news-1", ["ann", "bea"]) == {}
    assert repo.find_many(KEY, "news-2", ["ann"]) == {}
    assert repo.find(None, "news-1", "ann").id == keyless["ann"].id
    assert repo.get(mine["bea"].id) == mine["bea"]
    assert repo.get(uuid.uuid4()) is None
    with pytest.raises(KeyError):
        repo.find(OTHER_KEY, "news-1", "ann")


def test_the_daily_quota_counts_only_the_rows_inserted_now_and_refuses_past_it(
    services: Container, clean_database: str
) -> None:
    repo = services.deliveries
    charge = DailyCharge(KEY, 3)

    first = repo.insert_new(KEY, [row("ann"), row("bea")], charge=charge)
    replay = repo.insert_new(KEY, [row("ann"), row("bea"), row("cid")], charge=charge)
    with pytest.raises(QuotaExceeded) as refused:
        repo.insert_new(KEY, [row("dan")], charge=charge)

    assert (sorted(first), sorted(replay)) == (["ann", "bea"], ["cid"])
    assert refused.value.quota == 3
    assert str(refused.value) == "daily recipient quota 3 reached"
    assert sorted(repo.find_many(KEY, "news-1", ["ann", "bea", "cid", "dan"])) == [
        "ann",
        "bea",
        "cid",
    ]
    assert recipients_today(clean_database, KEY) == 3


def test_a_refused_quota_records_and_counts_nothing(
    services: Container, clean_database: str
) -> None:
    repo = services.deliveries
    repo.insert_new(KEY, [row("ann")], charge=DailyCharge(KEY, 2))

    with pytest.raises(QuotaExceeded):
        repo.insert_new(KEY, [row("bea"), row("cid")], charge=DailyCharge(KEY, 2))

    assert sorted(repo.find_many(KEY, "news-1", ["ann", "bea", "cid"])) == ["ann"]
    assert recipients_today(clean_database, KEY) == 1
    # Without a quota the rows are still counted for the key's figures.
    repo.insert_new(KEY, [row("bea"), row("cid")], charge=DailyCharge(KEY, None))
    assert recipients_today(clean_database, KEY) == 3


def test_nothing_to_record_or_mark_touches_nothing(
    services: Container, clean_database: str
) -> None:
    repo = services.deliveries

    assert repo.insert_new(KEY, [], charge=DailyCharge(KEY, 0)) == {}
    repo.mark_dispatched([])
    repo.results_published([])

    assert recipients_today(clean_database, KEY) == 0


def test_marking_dispatched_keeps_the_first_dispatch_time(
    services: Container, clean_database: str
) -> None:
    repo = services.deliveries
    rows = repo.insert_new(KEY, [row("ann"), row("bea", dispatched=True), row("cid")])
    age(clean_database, "dispatched_at", {"bea": 60})
    before = repo.find(KEY, "news-1", "bea").dispatched_at

    repo.mark_dispatched([rows["ann"].id, rows["bea"].id])

    found = repo.find_many(KEY, "news-1", ["ann", "bea", "cid"])
    assert found["ann"].dispatched_at is not None
    assert found["bea"].dispatched_at == before
    assert found["cid"].dispatched_at is None


# --- reporting and recovery ----------------------------------------------------------------


def test_pending_reports_are_read_oldest_first_within_the_limit(
    services: Container, clean_database: str
) -> None:
    repo = services.deliveries
    repo.insert_new(KEY, [row(rid) for rid in ("ann", "bea", "cid", "dan")])
    with psycopg.connect(clean_database) as conn:
        conn.execute("UPDATE deliveries SET result_pending = email_recipient_id <> 'dan'")
    age(clean_database, "updated_at", {"ann": 5, "bea": 30, "cid": 10})

    assert [d.email_recipient_id for d in repo.pending_results(2)] == ["bea", "cid"]
    assert [d.email_recipient_id for d in repo.pending_results(10)] == ["bea", "cid", "ann"]


def test_the_sweep_reads_undispatched_rows_oldest_first_within_the_limit(
    services: Container, clean_database: str
) -> None:
    repo = services.deliveries
    repo.insert_new(KEY, [row(rid) for rid in ("ann", "bea", "cid", "dan", "eve", "fay")])
    repo.insert_new(KEY, [row("gus", email_id="news-2", dispatched=True)])
    age(clean_database, "updated_at", {"ann": 30, "bea": 60, "cid": 45, "dan": 1, "gus": 90})
    age(clean_database, "updated_at", {"eve": 50, "fay": 50})
    held = lease(services.leases, (KEY, "news-1", "eve"))  # a sender holds it
    assert held is not None
    age(clean_database, "updated_at", {"eve": 50})
    with psycopg.connect(clean_database) as conn:
        conn.execute("UPDATE deliveries SET status = 'failed' WHERE email_recipient_id = 'fay'")
    age(clean_database, "updated_at", {"fay": 50})

    two = repo.undispatched(older_than_seconds=600, limit=2)
    every = repo.undispatched(older_than_seconds=600, limit=10)

    assert [d.email_recipient_id for d in two] == ["bea", "cid"]
    assert [d.email_recipient_id for d in every] == ["bea", "cid", "ann"]  # dan is too recent


def test_the_sweep_reads_abandoned_rows_oldest_dispatch_first_within_the_limit(
    services: Container, clean_database: str
) -> None:
    repo = services.deliveries
    repo.insert_new(KEY, [row(rid, dispatched=True) for rid in ("ann", "bea", "cid", "dan", "eve")])
    repo.insert_new(KEY, [row("fay", email_id="news-2")])  # never dispatched
    age(clean_database, "dispatched_at", {"ann": 300, "bea": 500, "cid": 400, "dan": 2})
    age(clean_database, "dispatched_at", {"eve": 450})
    age(clean_database, "updated_at", {"fay": 600})
    # Dispatched long ago, but a sender holds it now; and one with an outcome.
    assert lease(services.leases, (KEY, "news-1", "eve")) is not None
    with psycopg.connect(clean_database) as conn:
        conn.execute("UPDATE deliveries SET status = 'sent' WHERE email_recipient_id = 'cid'")

    two = repo.abandoned(older_than_seconds=3600, limit=1)
    every = repo.abandoned(older_than_seconds=3600, limit=10)

    assert [d.email_recipient_id for d in two] == ["bea"]
    assert [d.email_recipient_id for d in every] == ["bea", "ann"]


def test_a_report_marked_published_clears_only_that_version_of_the_row(
    services: Container, clean_database: str
) -> None:
    repo = services.deliveries
    rows = repo.insert_new(KEY, [row("ann"), row("bea"), row("cid")])
    with psycopg.connect(clean_database) as conn:
        conn.execute("UPDATE deliveries SET result_pending = true")
    reported = repo.find_many(KEY, "news-1", ["ann", "bea", "cid"])
    with psycopg.connect(clean_database) as conn:  # bea moved on after it was reported
        conn.execute(
            "UPDATE deliveries SET updated_at = updated_at + interval '1 second'"
            " WHERE email_recipient_id = 'bea'"
        )

    repo.results_published([reported["ann"], reported["bea"]])

    assert sorted(d.email_recipient_id for d in repo.pending_results(10)) == ["bea", "cid"]
    assert repo.get(rows["ann"].id) == replace(reported["ann"], result_pending=False)
