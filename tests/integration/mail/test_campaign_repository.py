"""The campaign repository on the real database, statement by statement: what each one
stores and answers (the lease, the row's shape, the status moves, the tick's due list, the
staged rows and the verdict, the fan-out's recipient rows and the consumer's chunk read).

The end-to-end campaign tests (``test_campaigns.py``, ``test_campaign_resume.py``) go through
processing; these pin the edges those do not reach: a lease's length, a field no answer
shows, a status the tick must or must not pick up, a limit met exactly.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from chalicelib.bootstrap import Container
from chalicelib.db import Database
from chalicelib.models.campaigns import CampaignStatus
from chalicelib.repositories.campaign_staging import Progress, StagedRow
from chalicelib.repositories.campaign_table import Campaign, LeaseLostError, RowPolicy
from chalicelib.repositories.campaigns import CampaignRepository
from chalicelib.repositories.delivery_rows import Delivery, select_deliveries

Status = CampaignStatus


@pytest.fixture
def repo(services: Container) -> CampaignRepository:
    """The repository as ``bootstrap`` builds it (the default lease)."""
    return CampaignRepository(services.database)


def create(
    repo: CampaignRepository,
    key: uuid.UUID,
    email_id: str = "c-1",
    *,
    fmt: str = "csv",
    policy: RowPolicy | None = None,
    send_at: datetime | None = None,
) -> Campaign:
    campaign = repo.create(
        api_key_id=key,
        email_id=email_id,
        fmt=fmt,
        skip_invalid=False,
        send_at=send_at,
        test_mode=False,
        policy=policy or RowPolicy(),
    )
    assert campaign is not None
    return campaign


def staged(*lines: tuple[int, str, str]) -> list[StagedRow]:
    """Rows to stage: (line, recipient id, address) with no name, company or params."""
    return [(line, rid, address, None, None, "{}") for line, rid, address in lines]


def stage(repo: CampaignRepository, campaign: Campaign, rows: list[StagedRow]) -> uuid.UUID:
    """The campaign taken and ``rows`` staged (as validation does); the lease's token."""
    taken = repo.take(campaign.id)
    assert taken is not None
    token = taken[1]
    last = max((row[0] for row in rows), default=1)
    repo.stage(campaign.id, token, rows, Progress(last, len(rows), 0, 0, []))
    return token


def sending(repo: CampaignRepository, campaign: Campaign, rows: list[StagedRow]) -> uuid.UUID:
    """Staged and validated: ``sending``, its rows not yet recorded; the lease's token."""
    token = stage(repo, campaign, rows)
    last = max((row[0] for row in rows), default=1)
    verdict = repo.finish_validation(
        campaign.id,
        token,
        status=Status.SENDING,
        progress=Progress(last, len(rows), 0, 0, []),
        drop_duplicates=False,
        quota=None,
    )
    assert verdict is Status.SENDING
    return token


def email(campaign: Campaign, **fields: Any) -> dict[str, Any]:
    """The email fields the fan-out records each recipient with (as the processor builds)."""
    return {
        "api_key_id": campaign.api_key_id,
        "email_id": campaign.email_id,
        "test_mode": False,
        **fields,
    }


def record_all(
    repo: CampaignRepository,
    campaign: Campaign,
    token: uuid.UUID,
    after: int = 0,
    **fields: Any,
) -> None:
    """Every staged row after line ``after`` recorded as a recipient, the fan-out done."""
    while True:
        recorded = repo.record(
            campaign.id,
            token,
            after_line=after,
            limit=100,
            email=email(campaign, **fields),
            suppressed_detail="listed ({reason})",
        )
        if recorded.through_line == after:
            return
        after = recorded.through_line


def sql(database_url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def db_now(database_url: str) -> datetime:
    moment = sql(database_url, "SELECT now()")[0][0]
    assert isinstance(moment, datetime)
    return moment


def rows_of(database: Database, campaign: Campaign) -> list[Delivery]:
    return sorted(
        select_deliveries(database, "campaign_id = %(id)s", id=campaign.id),
        key=lambda d: d.email_recipient_id,
    )


def staged_rows(database_url: str, campaign: Campaign) -> list[tuple[Any, ...]]:
    return sql(
        database_url,
        "SELECT line, email_recipient_id, recipient, recipient_name, recipient_company, params"
        " FROM campaign_rows WHERE campaign_id = %s ORDER BY line",
        campaign.id,
    )


# --- campaign_table: the row's shape and the processing lease --------------------------


def test_a_created_campaign_reads_back_field_by_field(
    repo: CampaignRepository, clean_database: str
) -> None:
    key = uuid.uuid4()
    send_at = datetime(2030, 1, 31, 9, 0, tzinfo=UTC)
    created = repo.create(
        api_key_id=key,
        email_id="spring",
        fmt="jsonl",
        skip_invalid=True,
        send_at=send_at,
        test_mode=True,
        policy=RowPolicy(("example.org", "example.net"), 250),
    )

    assert created is not None
    assert created.id.startswith("cmp_")
    assert (created.api_key_id, created.email_id, created.format) == (key, "spring", "jsonl")
    assert (created.skip_invalid, created.send_at, created.test_mode) == (True, send_at, True)
    assert created.policy == RowPolicy(("example.org", "example.net"), 250)
    assert created.status is Status.AWAITING_UPLOAD
    assert created.upload_key == f"uploads/{created.id}.jsonl"
    assert (created.rows_total, created.rows_invalid, created.error_count) == (0, 0, 0)
    assert created.errors == []
    assert (created.validated_through, created.validated) == (0, False)
    assert (created.recorded_through, created.queued_through, created.fanned_out) == (0, 0, False)
    assert isinstance(created.seq, int)
    assert isinstance(created.created_at, datetime)
    assert isinstance(created.updated_at, datetime)
    assert created.counts == {}
    # Every read answers the same row (the counts read with it: none yet).
    assert repo.get(created.id) == created
    assert repo.by_email(key, "spring") == created
    assert repo.by_upload_key(created.upload_key) == created
    # A key without a policy: any domain, no quota.
    plain = create(repo, key, "plain")
    assert plain.policy == RowPolicy(None, None)
    assert plain.send_at is None


def test_a_campaign_is_read_with_its_recipients_counted_by_status(
    repo: CampaignRepository, clean_database: str
) -> None:
    key = uuid.uuid4()
    campaign = create(repo, key, "counted")
    sql(
        clean_database,
        "INSERT INTO suppressions (address, reason) VALUES ('b@example.org', 'manual')",
    )
    rows = staged(
        (2, "r-1", "a@example.org"), (3, "r-2", "b@example.org"), (4, "r-3", "c@example.org")
    )
    token = sending(repo, campaign, rows)
    record_all(repo, campaign, token)
    sql(clean_database, "UPDATE deliveries SET status = 'sent' WHERE email_recipient_id = 'r-3'")

    counted = {"queued": 1, "sent": 1, "suppressed": 1}
    read = repo.get(campaign.id)
    assert read is not None
    assert read.counts == counted
    by_email = repo.by_email(key, "counted")
    assert by_email is not None
    assert by_email.counts == counted
    assert [c.counts for c in repo.page(key, None, 5)] == [counted]


def test_take_holds_the_campaign_for_the_lease_and_only_its_holder_releases_it(
    repo: CampaignRepository, clean_database: str
) -> None:
    campaign = create(repo, uuid.uuid4())

    before = db_now(clean_database)
    taken = repo.take(campaign.id)
    after = db_now(clean_database)

    assert taken is not None
    held, token = taken
    assert held.id == campaign.id
    [(worker_token, until)] = sql(
        clean_database, "SELECT worker_token, worker_until FROM campaigns WHERE id = %s", held.id
    )
    assert worker_token == token
    # The default lease is two minutes from the take.
    assert before + timedelta(seconds=120) <= until <= after + timedelta(seconds=120)
    assert repo.take(campaign.id) is None  # held: nobody else takes it

    repo.release(campaign.id, uuid.uuid4())  # not the holder: nothing changes
    assert repo.take(campaign.id) is None
    repo.release(campaign.id, token)
    assert sql(
        clean_database, "SELECT worker_token, worker_until FROM campaigns WHERE id = %s", held.id
    ) == [(None, None)]
    assert repo.take(campaign.id) is not None


def test_each_step_renews_the_lease_for_its_length_and_a_lost_lease_stops_it(
    services: Container, clean_database: str
) -> None:
    repo = CampaignRepository(services.database, lease_seconds=30)
    campaign = create(repo, uuid.uuid4())
    taken = repo.take(campaign.id)
    assert taken is not None
    token = taken[1]
    sql(clean_database, "UPDATE campaigns SET worker_until = now() + interval '1 second'")

    before = db_now(clean_database)
    repo.stage(campaign.id, token, staged((2, "r-1", "a@example.org")), Progress(2, 1, 0, 0, []))
    after = db_now(clean_database)

    [(until,)] = sql(clean_database, "SELECT worker_until FROM campaigns")
    assert before + timedelta(seconds=30) <= until <= after + timedelta(seconds=30)
    with pytest.raises(LeaseLostError):
        repo.stage(
            campaign.id, uuid.uuid4(), staged((3, "r-2", "b@example.org")), Progress(3, 2, 0, 0, [])
        )
    assert [row[0] for row in staged_rows(clean_database, campaign)] == [2]


# --- campaign_lifecycle: reads, status moves, the tick's list, cancel ----------------------


def test_reads_find_nothing_for_another_key_an_unknown_email_or_upload(
    repo: CampaignRepository,
) -> None:
    key = uuid.uuid4()
    campaign = create(repo, key)

    assert repo.get(campaign.id, key) == campaign
    assert repo.get(campaign.id, uuid.uuid4()) is None
    assert repo.get("cmp_unknown") is None
    assert repo.by_email(key, "another") is None
    assert repo.by_email(uuid.uuid4(), campaign.email_id) is None
    assert repo.by_upload_key("uploads/cmp_unknown.csv") is None
    # The same key and email_id again: no second campaign.
    assert (
        repo.create(
            api_key_id=key,
            email_id=campaign.email_id,
            fmt="jsonl",
            skip_invalid=True,
            send_at=None,
            test_mode=False,
            policy=RowPolicy(),
        )
        is None
    )


def test_a_keys_campaigns_page_newest_first_before_a_sequence_number(
    repo: CampaignRepository,
) -> None:
    key = uuid.uuid4()
    first, second, third = (create(repo, key, f"c-{i}") for i in range(3))
    create(repo, uuid.uuid4(), "c-0")  # another key's

    assert [c.id for c in repo.page(key, None, 2)] == [third.id, second.id]
    assert [c.id for c in repo.page(key, second.seq, 2)] == [first.id]
    assert [c.id for c in repo.page(key, None, 5)] == [third.id, second.id, first.id]
    assert repo.page(uuid.uuid4(), None, 5) == []


def test_move_changes_the_status_only_from_the_statuses_named(
    repo: CampaignRepository,
) -> None:
    campaign = create(repo, uuid.uuid4())

    assert not repo.move(campaign.id, Status.SENDING, only_from=[Status.VALIDATING])
    assert repo.move(
        campaign.id, Status.VALIDATING, only_from=[Status.SCHEDULED, Status.AWAITING_UPLOAD]
    )
    moved = repo.get(campaign.id)
    assert moved is not None
    assert moved.status is Status.VALIDATING
    assert moved.updated_at > campaign.updated_at


def test_the_tick_finds_each_campaign_with_work_and_no_other(
    repo: CampaignRepository, clean_database: str
) -> None:
    key = uuid.uuid4()
    made = {
        name: create(repo, key, name)
        for name in (
            "awaiting",
            "validating",
            "validating-held",
            "scheduled-due",
            "scheduled-later",
            "sending",
            "cancelled-unrecorded",
            "cancelled-unvalidated",
            "cancelled-rows-left",
            "cancelled-settled",
            "completed",
            "failed",
        )
    }
    states = {
        "validating": "UPDATE campaigns SET status = 'validating' WHERE email_id = %s",
        "validating-held": "UPDATE campaigns SET status = 'validating',"
        " worker_until = now() + interval '1 minute' WHERE email_id = %s",
        "scheduled-due": "UPDATE campaigns SET status = 'scheduled',"
        " send_at = now() - interval '1 second' WHERE email_id = %s",
        "scheduled-later": "UPDATE campaigns SET status = 'scheduled',"
        " send_at = now() + interval '1 hour' WHERE email_id = %s",
        "sending": "UPDATE campaigns SET status = 'sending', validated = true,"
        " worker_until = now() - interval '1 second' WHERE email_id = %s",
        "cancelled-unrecorded": "UPDATE campaigns SET status = 'cancelled', validated = true"
        " WHERE email_id = %s",
        "cancelled-unvalidated": "UPDATE campaigns SET status = 'cancelled' WHERE email_id = %s",
        "completed": "UPDATE campaigns SET status = 'completed', validated = true,"
        " fanned_out = true WHERE email_id = %s",
        "failed": "UPDATE campaigns SET status = 'failed', validated = true,"
        " fanned_out = true WHERE email_id = %s",
    }
    for name, statement in states.items():
        sql(clean_database, statement, name)
    # Cancelled once fanned out: one with a row still queued, one with every row settled.
    for name in ("cancelled-rows-left", "cancelled-settled"):
        campaign = made[name]
        token = sending(repo, campaign, staged((2, "r-1", f"{name}@example.org")))
        record_all(repo, campaign, token)
        repo.release(campaign.id, token)
        assert repo.cancel(campaign.id, key)
    settled = repo.cancel_queued(made["cancelled-settled"].id, 10)
    assert [d.status.value for d in settled] == ["cancelled"]

    due = repo.due(50)

    assert sorted(due) == sorted(
        made[name].id
        for name in (
            "validating",
            "scheduled-due",
            "sending",
            "cancelled-unrecorded",
            "cancelled-rows-left",
        )
    )
    assert len(due) == len(set(due))


def test_a_campaign_completes_only_once_fanned_out_with_no_row_left_queued(
    repo: CampaignRepository, clean_database: str
) -> None:
    campaign = create(repo, uuid.uuid4())
    token = sending(
        repo, campaign, staged((2, "r-1", "a@example.org"), (3, "r-2", "b@example.org"))
    )
    repo.record(
        campaign.id,
        token,
        after_line=0,
        limit=1,
        email=email(campaign),
        suppressed_detail="listed ({reason})",
    )
    sql(clean_database, "UPDATE deliveries SET status = 'sent'")
    assert not repo.complete_if_done(campaign.id)  # line 3 is not recorded yet
    record_all(repo, campaign, token, after=2)
    assert not repo.complete_if_done(campaign.id)  # line 3 is queued

    sql(clean_database, "UPDATE deliveries SET status = 'sent'")
    assert repo.complete_if_done(campaign.id)

    done = repo.get(campaign.id)
    assert done is not None
    assert done.status is Status.COMPLETED
    assert not repo.complete_if_done(campaign.id)  # once


def test_cancel_takes_an_unfinished_campaign_of_its_key_only(
    repo: CampaignRepository, clean_database: str
) -> None:
    key = uuid.uuid4()
    fresh, completed, failed, cancelled = (create(repo, key, f"c-{i}") for i in range(4))
    for campaign, status in (
        (completed, "completed"),
        (failed, "failed"),
        (cancelled, "cancelled"),
    ):
        sql(clean_database, "UPDATE campaigns SET status = %s WHERE id = %s", status, campaign.id)

    assert not repo.cancel(fresh.id, uuid.uuid4())
    assert [repo.cancel(c.id, key) for c in (completed, failed, cancelled)] == [False] * 3
    assert repo.cancel(fresh.id, key)

    after = repo.get(fresh.id)
    assert after is not None
    assert after.status is Status.CANCELLED


def test_held_counts_the_rows_a_sender_holds_now_and_cancel_queued_leaves_them(
    repo: CampaignRepository, services: Container, clean_database: str
) -> None:
    key = uuid.uuid4()
    campaign = create(repo, key)
    rows = staged(*((line, f"r-{line}", f"r{line}@example.org") for line in range(2, 7)))
    token = sending(repo, campaign, rows)
    record_all(repo, campaign, token)
    assert repo.held(campaign.id) == 0
    sql(
        clean_database,
        "UPDATE deliveries SET lease_token = gen_random_uuid(),"
        " lease_until = now() + interval '1 minute' WHERE email_recipient_id IN ('r-2', 'r-3')",
    )
    sql(
        clean_database,
        "UPDATE deliveries SET lease_token = gen_random_uuid(),"
        " lease_until = now() - interval '1 second' WHERE email_recipient_id = 'r-4'",
    )
    assert repo.held(campaign.id) == 2
    assert repo.cancel_queued(campaign.id, 10) == []  # not cancelled: nothing changes
    assert repo.cancel(campaign.id, key)

    first = repo.cancel_queued(campaign.id, 2)
    rest = repo.cancel_queued(campaign.id, 2)

    assert len(first) == 2
    assert len(rest) == 1  # r-2 and r-3 are held
    assert {d.email_recipient_id for d in first + rest} == {"r-4", "r-5", "r-6"}
    assert all(
        (d.status.value, d.status_detail, d.result_pending)
        == ("cancelled", "campaign_cancelled", True)
        for d in first + rest
    )
    assert repo.held(campaign.id) == 2
    assert [d.status.value for d in rows_of(services.database, campaign)] == [
        "queued",
        "queued",
        "cancelled",
        "cancelled",
        "cancelled",
    ]


# --- campaign_staging: staged rows, duplicates, the verdict ------------------------------


def test_stage_copies_each_row_and_moves_the_checkpoint_with_it(
    repo: CampaignRepository, clean_database: str
) -> None:
    campaign = create(repo, uuid.uuid4())
    taken = repo.take(campaign.id)
    assert taken is not None
    error = {"line": 4, "email_recipient_id": "r-3", "field": "mail", "message": "no @"}
    rows: list[StagedRow] = [
        (2, "r-1", "ann@example.org", "Ann", "A, Inc.", '{"code": "A1"}'),
        (3, "r-2", "ben@example.org", None, None, "{}"),
    ]

    repo.stage(campaign.id, taken[1], rows, Progress(5, 4, 2, 3, [error]))
    repo.stage(campaign.id, taken[1], [], Progress(6, 5, 3, 4, [error, error]))

    assert staged_rows(clean_database, campaign) == [
        (2, "r-1", "ann@example.org", "Ann", "A, Inc.", {"code": "A1"}),
        (3, "r-2", "ben@example.org", None, None, {}),
    ]
    stored = repo.get(campaign.id)
    assert stored is not None
    assert (stored.validated_through, stored.rows_total, stored.rows_invalid) == (6, 5, 3)
    assert (stored.error_count, stored.errors) == (4, [error, error])
    assert not stored.validated


def test_duplicates_counts_every_later_line_of_a_recipient_id_and_lists_the_first(
    repo: CampaignRepository,
) -> None:
    key = uuid.uuid4()
    many, one, none = (create(repo, key, f"c-{i}") for i in range(3))
    stage(
        repo,
        many,
        staged(
            (2, "a", "a@example.org"),
            (3, "b", "b@example.org"),
            (4, "a", "a2@example.org"),
            (5, "a", "a3@example.org"),
            (6, "b", "b2@example.org"),
            (7, "c", "c@example.org"),
        ),
    )
    stage(repo, one, staged((2, "a", "a@example.org"), (3, "a", "a2@example.org")))
    stage(repo, none, staged((2, "a", "a@example.org"), (3, "b", "b@example.org")))

    assert repo.duplicates(many.id, 2) == (3, [(4, "a"), (5, "a")])
    assert repo.duplicates(many.id, 10) == (3, [(4, "a"), (5, "a"), (6, "b")])
    assert repo.duplicates(one.id, 10) == (1, [(3, "a")])
    assert repo.duplicates(none.id, 10) == (0, [])


def test_the_verdict_keeps_the_first_line_of_a_duplicate_and_writes_the_counts(
    repo: CampaignRepository, clean_database: str
) -> None:
    campaign = create(repo, uuid.uuid4())
    token = stage(
        repo,
        campaign,
        staged(
            (2, "a", "a@example.org"),
            (3, "b", "b@example.org"),
            (4, "a", "a2@example.org"),
        ),
    )
    error = {"line": 4, "email_recipient_id": "a", "field": "emailRecipientId", "message": "x"}

    verdict = repo.finish_validation(
        campaign.id,
        token,
        status=Status.SCHEDULED,
        progress=Progress(5, 4, 2, 2, [error]),
        drop_duplicates=True,
        quota=None,
    )

    assert verdict is Status.SCHEDULED
    assert [(row[0], row[1]) for row in staged_rows(clean_database, campaign)] == [
        (2, "a"),
        (3, "b"),
    ]
    stored = repo.get(campaign.id)
    assert stored is not None
    assert stored.status is Status.SCHEDULED
    assert (stored.validated, stored.validated_through, stored.rows_total) == (True, 5, 4)
    assert (stored.rows_invalid, stored.error_count, stored.errors) == (2, 2, [error])


def test_a_file_past_the_keys_daily_quota_fails_with_its_error_first_and_keeps_no_row(
    repo: CampaignRepository, clean_database: str
) -> None:
    key = uuid.uuid4()
    fits, over = create(repo, key, "fits"), create(repo, key, "over")
    fits_token = stage(repo, fits, staged((2, "a", "a@example.org"), (3, "b", "b@example.org")))
    over_token = stage(repo, over, staged((2, "c", "c@example.org")))
    listed = {"line": 3, "email_recipient_id": "d", "field": "mail", "message": "no @"}

    assert (
        repo.finish_validation(
            fits.id,
            fits_token,
            status=Status.SENDING,
            progress=Progress(3, 2, 0, 0, []),
            drop_duplicates=False,
            quota=(key, 2, 2),
        )
        is Status.SENDING
    )
    verdict = repo.finish_validation(
        over.id,
        over_token,
        status=Status.SENDING,
        progress=Progress(3, 2, 1, 1, [listed]),
        drop_duplicates=False,
        quota=(key, 1, 2),
    )

    assert verdict is Status.FAILED
    failed = repo.get(over.id)
    assert failed is not None
    assert failed.status is Status.FAILED
    assert (failed.validated, failed.validated_through) == (True, 3)
    assert (failed.rows_total, failed.rows_invalid, failed.error_count) == (2, 1, 2)
    assert failed.errors == [
        {
            "line": 0,
            "email_recipient_id": None,
            "field": "daily_recipient_quota",
            "message": "1 recipients would pass this key's daily recipient quota (2);"
            " nothing was sent",
        },
        listed,
    ]
    assert staged_rows(clean_database, over) == []
    assert len(staged_rows(clean_database, fits)) == 2
    assert sql(clean_database, "SELECT recipients FROM key_daily_usage") == [(2,)]


def test_a_failed_verdict_counts_nothing_against_the_quota_and_keeps_no_row(
    repo: CampaignRepository, clean_database: str
) -> None:
    key = uuid.uuid4()
    broken, next_one = create(repo, key, "broken"), create(repo, key, "next")
    broken_token = stage(repo, broken, staged((2, "a", "a@example.org"), (3, "b", "b@example.org")))
    next_token = stage(repo, next_one, staged((2, "c", "c@example.org"), (3, "d", "d@example.org")))

    assert (
        repo.finish_validation(
            broken.id,
            broken_token,
            status=Status.FAILED,
            progress=Progress(4, 3, 1, 1, []),
            drop_duplicates=False,
            quota=(key, 2, 2),
        )
        is Status.FAILED
    )
    assert staged_rows(clean_database, broken) == []
    assert (
        repo.finish_validation(
            next_one.id,
            next_token,
            status=Status.SENDING,
            progress=Progress(3, 2, 0, 0, []),
            drop_duplicates=False,
            quota=(key, 2, 2),
        )
        is Status.SENDING
    )


def test_a_campaign_cancelled_while_its_file_was_read_stays_cancelled(
    repo: CampaignRepository, clean_database: str
) -> None:
    key = uuid.uuid4()
    valid, unreadable = create(repo, key, "valid"), create(repo, key, "unreadable")
    valid_token = stage(repo, valid, staged((2, "a", "a@example.org")))
    unreadable_token = stage(repo, unreadable, staged((2, "b", "b@example.org")))
    assert repo.cancel(valid.id, key)
    assert repo.cancel(unreadable.id, key)
    problem = {"line": 0, "email_recipient_id": None, "field": "file", "message": "gone"}

    repo.finish_validation(
        valid.id,
        valid_token,
        status=Status.SENDING,
        progress=Progress(2, 1, 0, 0, []),
        drop_duplicates=False,
        quota=None,
    )
    repo.fail(unreadable.id, unreadable_token, problem)

    first, second = repo.get(valid.id), repo.get(unreadable.id)
    assert first is not None
    assert second is not None
    assert (first.status, first.validated, first.fanned_out) == (Status.CANCELLED, True, False)
    assert (second.status, second.validated, second.fanned_out) == (Status.CANCELLED, True, True)
    assert (second.error_count, second.errors) == (1, [problem])


def test_a_file_that_cannot_be_read_fails_with_its_one_error_and_keeps_no_row(
    repo: CampaignRepository, clean_database: str
) -> None:
    campaign = create(repo, uuid.uuid4())
    token = stage(repo, campaign, staged((2, "a", "a@example.org")))
    problem = {"line": 7, "email_recipient_id": None, "field": "file", "message": "not UTF-8"}

    repo.fail(campaign.id, token, problem)

    failed = repo.get(campaign.id)
    assert failed is not None
    assert failed.status is Status.FAILED
    assert (failed.validated, failed.fanned_out) == (True, True)
    assert (failed.error_count, failed.errors) == (1, [problem])
    assert staged_rows(clean_database, campaign) == []
    with pytest.raises(LeaseLostError):
        repo.fail(campaign.id, uuid.uuid4(), problem)


# --- campaign_fan_out: recipient rows, the checkpoints, the consumer's chunk read --------


def test_record_takes_the_next_rows_in_line_order_up_to_the_limit_with_the_checkpoint(
    repo: CampaignRepository, services: Container
) -> None:
    campaign = create(repo, uuid.uuid4())
    rows = staged(*((line, f"r-{line}", f"r{line}@example.org") for line in range(2, 9)))
    token = sending(repo, campaign, rows)

    steps = []
    after = 0
    while True:
        recorded = repo.record(
            campaign.id,
            token,
            after_line=after,
            limit=3,
            email=email(campaign),
            suppressed_detail="listed ({reason})",
        )
        stored = repo.get(campaign.id)
        assert stored is not None
        steps.append((recorded.queued_lines, recorded.through_line, stored.recorded_through))
        assert stored.fanned_out is (recorded.through_line == after)
        if recorded.through_line == after:
            break
        after = recorded.through_line

    assert steps == [([2, 3, 4], 4, 4), ([5, 6, 7], 7, 7), ([8], 8, 8), ([], 8, 8)]
    assert [d.email_recipient_id for d in rows_of(services.database, campaign)] == [
        f"r-{line}" for line in range(2, 9)
    ]


def test_recorded_rows_carry_the_emails_fields_and_listed_addresses_are_final(
    repo: CampaignRepository, services: Container, clean_database: str
) -> None:
    key = uuid.uuid4()
    campaign = create(repo, key, "news")
    sql(
        clean_database,
        "INSERT INTO suppressions (address, reason) VALUES ('ben@example.org', 'manual')",
    )
    rows: list[StagedRow] = [
        (2, "r-1", "ann@example.org", "Ann", "A Inc", '{"code": "A1"}'),
        (3, "r-2", "Ben@Example.org", "Ben", None, "{}"),
        (4, "r-3", "cy@example.org", None, None, "{}"),
    ]
    token = sending(repo, campaign, rows)
    fields = {
        "client_env_id": "env-1",
        "projectId": "project-2",
        "closureId": "closure-3",
        "metadata": {"team": "blue"},
        "test_mode": True,
        "template_id": "tpl_welcome",
        "template_version": 4,
    }

    recorded = repo.record(
        campaign.id,
        token,
        after_line=0,
        limit=10,
        email=email(campaign, **fields),
        suppressed_detail="listed ({reason})",
    )

    assert (recorded.queued_lines, recorded.through_line) == ([2, 4], 4)
    [final] = recorded.final_rows
    assert (final.email_recipient_id, final.status.value) == ("r-2", "suppressed")
    assert (final.status_detail, final.result_pending) == ("listed (manual)", True)
    ann, ben, cy = rows_of(services.database, campaign)
    assert ben == final
    for row in (ann, ben, cy):
        assert (row.api_key_id, row.email_id) == (key, "news")
        assert (row.client_env_id, row.project_id, row.closure_id) == (
            "env-1",
            "project-2",
            "closure-3",
        )
        assert (row.metadata, row.test_mode) == ({"team": "blue"}, True)
        assert (row.template_id, row.template_version) == ("tpl_welcome", 4)
    assert (ann.status.value, ann.result_pending, ann.status_detail) == ("queued", False, None)
    assert ann.dispatched_at is not None
    assert ben.dispatched_at is None
    assert (ann.recipient, ann.recipient_name, ann.recipient_company) == (
        "ann@example.org",
        "Ann",
        "A Inc",
    )
    assert ann.recipient_params == {"code": "A1"}


def test_rows_recorded_without_the_optional_fields_store_none_and_no_metadata(
    repo: CampaignRepository, services: Container
) -> None:
    campaign = create(repo, uuid.uuid4())
    token = sending(repo, campaign, staged((2, "r-1", "a@example.org")))

    record_all(repo, campaign, token)

    [row] = rows_of(services.database, campaign)
    assert (row.client_env_id, row.project_id, row.closure_id) == (None, None, None)
    assert (row.metadata, row.test_mode) == ({}, False)
    assert (row.template_id, row.template_version) == (None, None)


def test_a_cancelled_campaigns_rows_are_recorded_cancelled_and_reported(
    repo: CampaignRepository, services: Container
) -> None:
    key = uuid.uuid4()
    campaign = create(repo, key)
    token = sending(
        repo, campaign, staged((2, "r-1", "a@example.org"), (3, "r-2", "b@example.org"))
    )
    assert repo.cancel(campaign.id, key)

    recorded = repo.record(
        campaign.id,
        token,
        after_line=0,
        limit=10,
        email=email(campaign),
        suppressed_detail="listed ({reason})",
    )

    assert (recorded.queued_lines, recorded.through_line) == ([], 3)
    assert [
        (d.email_recipient_id, d.status.value, d.status_detail) for d in recorded.final_rows
    ] == [
        ("r-1", "cancelled", "campaign_cancelled"),
        ("r-2", "cancelled", "campaign_cancelled"),
    ]


def test_a_resume_finds_the_lines_recorded_after_the_queued_checkpoint(
    repo: CampaignRepository,
) -> None:
    campaign = create(repo, uuid.uuid4())
    rows = staged(*((line, f"r-{line}", f"r{line}@example.org") for line in (2, 3, 5, 6, 8)))
    token = sending(repo, campaign, rows)

    assert repo.recorded_lines(campaign.id, 2, 6) == [3, 5, 6]
    assert repo.recorded_lines(campaign.id, 0, 100) == [2, 3, 5, 6, 8]
    assert repo.recorded_lines(campaign.id, 8, 100) == []
    repo.queued(campaign.id, token, 6)
    stored = repo.get(campaign.id)
    assert stored is not None
    assert stored.queued_through == 6


def test_chunk_rows_reads_each_chunks_queued_recipients_in_chunk_and_line_order(
    repo: CampaignRepository, clean_database: str
) -> None:
    first, second = create(repo, uuid.uuid4(), "one"), create(repo, uuid.uuid4(), "two")
    for campaign in (first, second):
        lines = (
            (line, f"{campaign.email_id}-{line}", f"r{line}@example.org") for line in range(2, 6)
        )
        token = sending(repo, campaign, staged(*lines))
        record_all(repo, campaign, token)
    sql(clean_database, "UPDATE deliveries SET status = 'sent' WHERE email_recipient_id = 'two-3'")

    read = repo.chunk_rows([(second.id, 2, 4), (first.id, 5, 5), (first.id, 2, 2)])

    assert [(r.chunk, r.campaign_id, r.delivery.email_recipient_id) for r in read] == [
        (0, second.id, "two-2"),
        (0, second.id, "two-4"),
        (1, first.id, "one-5"),
        (2, first.id, "one-2"),
    ]
    assert read[0].delivery.api_key_id == second.api_key_id
    assert repo.chunk_rows([]) == []
