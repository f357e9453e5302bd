"""``SendLeaseRepository`` on the real database: who may send a row, and what became of a send.

Each statement is read through the rows it leaves: a lease for the time asked, a listed
address taken without counting an attempt, outcomes recorded only by the lease's holder, a
receipt recording a send on the queued row, a failure only on a row nobody holds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from chalicelib.bootstrap import Container
from chalicelib.models.mail import DeliveryState
from chalicelib.repositories.delivery_rows import Delivery, NewDelivery
from chalicelib.repositories.send_leases import Settlement
from tests.integration.mail.conftest import Wire
from tests.support.fake_providers import FakeProvider

KEY = uuid.UUID("5e1d0a11-0000-4000-8000-000000000001")


@pytest.fixture
def services(wire: Wire) -> Container:
    return wire(sender=FakeProvider("fake"))


def record(services: Container, *names: str, key: uuid.UUID | None = KEY) -> dict[str, Delivery]:
    return services.deliveries.insert_new(
        key,
        [
            NewDelivery(
                email_id="news-1",
                email_recipient_id=name,
                recipient=f"{name}@example.org",
                dispatched=True,
            )
            for name in names
        ],
    )


def lease_until(database: str, rid: str) -> datetime | None:
    """The lease of ``rid``'s row under ``KEY``."""
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "SELECT lease_until FROM deliveries WHERE email_recipient_id = %s AND api_key_id = %s",
            (rid, KEY),
        ).fetchone()
    assert found is not None
    value: datetime | None = found[0]
    return value


def test_nothing_to_claim_or_settle_is_nothing(services: Container) -> None:
    assert services.leases.claim_keys([], 60) == {}
    assert services.leases.settle_many([]) == {}


def test_a_claim_leases_each_free_queued_row_for_the_time_asked(
    services: Container, clean_database: str
) -> None:
    record(services, "ann", "bea")
    record(services, "ann", key=None)
    before = datetime.now(UTC)

    claims = services.leases.claim_keys(
        [(KEY, "news-1", "ann"), (KEY, "news-1", "bea"), (KEY, "news-1", "zed")], 90
    )

    assert sorted(claims) == [(KEY, "news-1", "ann"), (KEY, "news-1", "bea")]
    ann = claims[(KEY, "news-1", "ann")]
    assert (ann.taken, ann.listed, ann.delivery.attempts) == (True, None, 1)
    assert ann.delivery.lease_token is not None
    assert ann.delivery.lease_token != claims[(KEY, "news-1", "bea")].delivery.lease_token
    until = lease_until(clean_database, "ann")
    assert until is not None
    assert before + timedelta(seconds=89) <= until <= datetime.now(UTC) + timedelta(seconds=91)
    # The keyless row of the same email and recipient is another row, not leased.
    keyless = services.leases.claim_keys([(None, "news-1", "ann")], 90)[(None, "news-1", "ann")]
    assert (keyless.taken, keyless.delivery.attempts) == (True, 1)
    assert keyless.delivery.id != ann.delivery.id


def test_a_row_someone_holds_or_that_has_an_outcome_is_found_not_taken(
    services: Container,
) -> None:
    record(services, "ann", "bea")
    first = services.leases.claim_keys([(KEY, "news-1", "ann"), (KEY, "news-1", "bea")], 60)
    services.leases.settle_many(
        [
            Settlement(
                first[(KEY, "news-1", "bea")].delivery,
                DeliveryState.SENT,
                provider="fake",
                message_id="fake-1",
            )
        ]
    )

    again = services.leases.claim_keys([(KEY, "news-1", "ann"), (KEY, "news-1", "bea")], 60)

    ann, bea = again[(KEY, "news-1", "ann")], again[(KEY, "news-1", "bea")]
    assert (ann.taken, ann.delivery.status, ann.delivery.attempts) == (
        False,
        DeliveryState.QUEUED,
        1,
    )
    assert (bea.taken, bea.delivery.status) == (False, DeliveryState.SENT)


def test_a_listed_address_is_taken_without_counting_an_attempt(services: Container) -> None:
    record(services, "ann", "bea")
    services.suppressions.add(["ANN@example.org"], "complaint")

    claims = services.leases.claim_keys([(KEY, "news-1", "ann"), (KEY, "news-1", "bea")], 60)

    ann, bea = claims[(KEY, "news-1", "ann")], claims[(KEY, "news-1", "bea")]
    assert (ann.taken, ann.listed, ann.delivery.attempts) == (True, "complaint", 0)
    assert (bea.taken, bea.listed, bea.delivery.attempts) == (True, None, 1)


def test_settling_records_each_outcome_for_the_lease_holder_only(
    services: Container, clean_database: str
) -> None:
    record(services, "ann", "bea", "cid", "dan", "eve")
    keys = [(KEY, "news-1", name) for name in ("ann", "bea", "cid", "dan", "eve")]
    held = {key[2]: claim.delivery for key, claim in services.leases.claim_keys(keys, 60).items()}
    before = datetime.now(UTC)
    stranger = Delivery(**{**held["eve"].__dict__, "lease_token": uuid.uuid4()})

    settled = services.leases.settle_many(
        [
            Settlement(held["ann"], DeliveryState.SENT, provider="fake", message_id="fake-1"),
            Settlement(
                held["bea"], DeliveryState.FAILED, provider="fake", error="550", detail="rejected"
            ),
            Settlement(held["cid"], DeliveryState.QUEUED, provider="fake", error="busy, later"),
            Settlement(held["dan"], DeliveryState.SUPPRESSED, detail="on the list"),
            Settlement(stranger, DeliveryState.SENT, provider="fake", message_id="fake-9"),
        ]
    )

    by_rid = {d.email_recipient_id: d for d in settled.values()}
    assert sorted(by_rid) == ["ann", "bea", "cid", "dan"]  # eve's lease is not the stranger's
    assert set(settled) == {held[name].id for name in ("ann", "bea", "cid", "dan")}
    summary = {
        rid: (
            d.status,
            d.provider,
            d.message_id,
            d.last_error,
            d.status_detail,
            d.result_pending,
            d.lease_token,
            d.sent_at is not None,
        )
        for rid, d in by_rid.items()
    }
    assert summary == {
        "ann": (DeliveryState.SENT, "fake", "fake-1", None, None, True, None, True),
        "bea": (DeliveryState.FAILED, "fake", None, "550", "rejected", True, None, False),
        "cid": (DeliveryState.QUEUED, "fake", None, "busy, later", None, False, None, False),
        "dan": (DeliveryState.SUPPRESSED, None, None, None, "on the list", True, None, False),
    }
    sent_at = by_rid["ann"].sent_at
    assert sent_at is not None
    assert before <= sent_at <= datetime.now(UTC)
    assert lease_until(clean_database, "cid") is None  # given back: anyone may send it now
    # A later outcome that names no provider keeps the one last tried.
    again = services.leases.claim_keys([(KEY, "news-1", "cid")], 60)[(KEY, "news-1", "cid")]
    later = services.leases.settle_many([Settlement(again.delivery, DeliveryState.SUPPRESSED)])
    assert [(d.status, d.provider) for d in later.values()] == [(DeliveryState.SUPPRESSED, "fake")]
    eve = services.deliveries.find(KEY, "news-1", "eve")
    assert (eve.status, eve.lease_token) == (DeliveryState.QUEUED, held["eve"].lease_token)


def test_a_receipt_records_the_send_on_the_queued_row_whoever_holds_it(
    services: Container, clean_database: str
) -> None:
    rows = record(services, "ann", "bea")
    held = services.leases.claim_keys([(KEY, "news-1", "ann")], 60)[(KEY, "news-1", "ann")]
    services.leases.settle_many([Settlement(held.delivery, DeliveryState.QUEUED, error="later")])
    services.leases.claim_keys([(KEY, "news-1", "ann")], 60)  # another sender holds it now
    before = datetime.now(UTC)

    sent = services.leases.record_sent(rows["ann"].id, "fake", "fake-7")

    assert sent is not None
    assert (
        sent.id,
        sent.status,
        sent.provider,
        sent.message_id,
        sent.last_error,
        sent.lease_token,
        sent.result_pending,
    ) == (rows["ann"].id, DeliveryState.SENT, "fake", "fake-7", None, None, True)
    assert sent.sent_at is not None
    assert before <= sent.sent_at <= datetime.now(UTC)
    assert lease_until(clean_database, "ann") is None
    assert services.deliveries.get(rows["ann"].id) == sent
    # Recorded once: a second receipt, or one for a row that is not there, changes nothing.
    assert services.leases.record_sent(rows["ann"].id, "other", "other-1") is None
    assert services.leases.record_sent(uuid.uuid4(), "fake", "fake-8") is None
    assert services.deliveries.get(rows["ann"].id) == sent
    assert services.deliveries.get(rows["bea"].id) == rows["bea"]


def test_only_a_queued_row_nobody_holds_can_be_failed(
    services: Container, clean_database: str
) -> None:
    rows = record(services, "ann", "bea", "cid")
    held = services.leases.claim_keys([(KEY, "news-1", "bea")], 60)[(KEY, "news-1", "bea")]
    assert services.leases.record_sent(rows["cid"].id, "fake", "fake-1") is not None
    with psycopg.connect(clean_database) as conn:  # ann's sender died: its lease ran out
        conn.execute(
            "UPDATE deliveries SET lease_until = now() - interval '1 second',"
            " lease_token = gen_random_uuid() WHERE email_recipient_id = 'ann'"
        )

    failed = services.leases.mark_failed(rows["ann"], "gave up", "retries_exhausted")
    busy = services.leases.mark_failed(held.delivery, "gave up", "retries_exhausted")
    done = services.leases.mark_failed(rows["cid"], "gave up", "retries_exhausted")

    assert failed is not None
    assert (
        failed.status,
        failed.last_error,
        failed.status_detail,
        failed.lease_token,
        failed.result_pending,
    ) == (DeliveryState.FAILED, "gave up", "retries_exhausted", None, True)
    assert lease_until(clean_database, "ann") is None
    assert (busy, done) == (None, None)
    bea = services.deliveries.get(rows["bea"].id)
    assert bea is not None
    assert (bea.status, bea.lease_token) == (DeliveryState.QUEUED, held.delivery.lease_token)
    cid = services.deliveries.get(rows["cid"].id)
    assert cid is not None
    assert cid.status is DeliveryState.SENT
