"""Send-rate governance: one schedule per provider in PostgreSQL, shared by every instance."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from itertools import pairwise
from operator import sub

import boto3
import psycopg
import pytest
from chalice.test import Client

from chalicelib.db import Database
from chalicelib.errors import DatabaseUnavailableError, ProviderThrottledError
from chalicelib.providers.chain import ProviderChain
from chalicelib.providers.ses import SesProvider
from chalicelib.repositories.send_rate import SendSlotRepository, Slot
from chalicelib.services.send_rate import SendRateGovernor
from tests.integration.mail.conftest import Wire, mail_headers, seed_request
from tests.support.fake_providers import FakeProvider, make_message
from tests.support.moto_server import MotoServer
from tests.support.round_trips import RoundTripCounter
from tests.support.smtp_server import unused_port
from tests.support.waiting import wait_until


def test_two_consumers_with_their_own_pools_share_one_schedule(clean_database: str) -> None:
    first, second = Database(clean_database, max_size=5), Database(clean_database, max_size=5)
    # One email a minute: however slowly the 40 reservations are made, the schedule they
    # share runs 39 minutes ahead of them, so each slot follows the one before it.
    spacing = 60.0
    repositories = [SendSlotRepository(first), SendSlotRepository(second)]
    start = threading.Barrier(10)

    def reserve(i: int) -> Slot | None:
        if i < 10:
            start.wait()
        return repositories[i % 2].reserve("ses", spacing, max_wait_seconds=3600)

    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            slots = list(pool.map(reserve, range(40)))
    finally:
        first.close()
        second.close()

    taken = [slot for slot in slots if slot is not None]
    assert len(taken) == 40
    times = sorted(slot.at for slot in taken)
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(times)]
    assert gaps == [spacing] * 39  # one after the other, never two closer than the rate
    waits = sorted(slot.wait_seconds for slot in taken)
    assert waits[0] == 0.0  # the first goes at once
    assert waits[-1] > 38 * spacing  # the last waits for the 39 before it


def test_a_full_schedule_refuses_before_the_provider_is_called(clean_database: str) -> None:
    database = Database(clean_database, max_size=2)
    waits: list[float] = []
    governor = SendRateGovernor(
        SendSlotRepository(database), {"primary": 1.0}, max_wait_seconds=2, sleep=waits.append
    )
    provider = FakeProvider("primary")
    backoffs: list[float] = []
    chain = ProviderChain([provider], pace=governor.pace, sleep=backoffs.append)
    try:
        for _ in range(3):  # slots now, in 1 s and in 2 s
            chain.send(make_message())
        with pytest.raises(ProviderThrottledError) as refused:
            chain.send(make_message())
    finally:
        database.close()

    assert refused.value.provider == "primary"
    assert refused.value.message == (
        "primary: send rate budget full (1/s) for more than 2 s: retried later"
    )
    assert len(provider.sent) == 3
    assert provider.attempts == 3
    assert [round(w) for w in waits] == [0, 1, 2]
    assert backoffs == []  # a full schedule is refused at once, not backed off against


def test_a_provider_without_a_rate_is_not_paced(clean_database: str) -> None:
    database = Database(clean_database, max_size=2)
    governor = SendRateGovernor(SendSlotRepository(database), {})
    try:
        assert governor.pace(FakeProvider("smtp")) == 0.0
    finally:
        database.close()
    with psycopg.connect(clean_database) as conn:
        assert conn.execute("SELECT count(*) FROM send_rate_slots").fetchone() == (0,)


def test_ses_reports_its_accounts_sending_rate(moto: MotoServer) -> None:
    v2 = boto3.client("sesv2", endpoint_url=moto.endpoint_url, region_name=moto.region)
    v1 = boto3.client("ses", endpoint_url=moto.endpoint_url, region_name=moto.region)

    # moto implements v2's GetAccount only as an error: the v1 quota answers instead.
    assert SesProvider(v2, quota_client_factory=lambda: v1).max_send_rate() == 1.0
    assert SesProvider(v2).max_send_rate() is None


def test_sends_through_the_api_take_a_slot_of_the_shared_schedule(
    wire: Wire, api: Client, api_key: str, clean_database: str
) -> None:
    wire()

    answer = call_send(api, api_key)

    assert answer == 200
    with psycopg.connect(clean_database) as conn:
        rows = conn.execute("SELECT provider FROM send_rate_slots").fetchall()
    assert rows == [("ses",)]


def call_send(api: Client, key: str) -> int:
    from tests.support.http import call

    return call(api, "POST", "/v1/mail", body=seed_request(), headers=mail_headers(key)).status


class GatedSchedule(SendSlotRepository):
    """The real schedule whose first reservation waits until ``release`` is set; ``entered``
    says it is waiting. Callers arriving meanwhile queue behind it."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.granted: list[list[Slot]] = []  # each statement's slots

    def reserve_many(
        self, provider: str, spacing_seconds: float, max_wait_seconds: float, count: int
    ) -> list[Slot]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(timeout=10), "the test never released the reservation"
        slots = super().reserve_many(provider, spacing_seconds, max_wait_seconds, count)
        self.granted.append(slots)
        return slots


def queued_behind_the_leader(governor: SendRateGovernor, provider: str) -> int:
    return len(governor._coalescer(provider)._waiting)


def test_a_batchs_concurrent_sends_reserve_their_slots_together(clean_database: str) -> None:
    with RoundTripCounter(clean_database) as counter:
        database = Database(counter.conninfo, max_size=5)
        waits: list[float] = []
        schedule = GatedSchedule(database)
        governor = SendRateGovernor(
            schedule, {"ses": 100.0}, max_wait_seconds=5, sleep=waits.append
        )
        database.ping()
        before = counter.round_trips
        try:
            with ThreadPoolExecutor(max_workers=10) as pool:
                sends = [pool.submit(governor.pace, FakeProvider("ses")) for _ in range(10)]
                assert schedule.entered.wait(timeout=10)  # the first reserves alone
                wait_until(
                    lambda: queued_behind_the_leader(governor, "ses") == 9,
                    "the nine other sends to queue behind the first",
                )
                schedule.release.set()
                paced = [send.result(timeout=10) for send in sends]
        finally:
            database.close()
        round_trips = counter.round_trips - before

    # The first reserves alone; the nine that arrived meanwhile share the next statement:
    # ten-millisecond slots, one after the other, each send waiting for its own.
    assert [len(slots) for slots in schedule.granted] == [1, 9]
    assert round_trips == 2
    [leader], followers = schedule.granted
    times = [leader.at] + [slot.at for slot in followers]
    assert all(gap >= timedelta(milliseconds=10) for gap in map(sub, times[1:], times))
    assert [b - a for a, b in pairwise(times[1:])] == [timedelta(milliseconds=10)] * 8
    assert sorted(paced) == sorted(waits) == sorted(s.wait_seconds for s in [leader, *followers])


def test_when_a_group_does_not_fit_as_many_as_fit_get_a_slot(clean_database: str) -> None:
    database = Database(clean_database, max_size=5)
    governor = SendRateGovernor(
        SendSlotRepository(database), {"ses": 1.0}, max_wait_seconds=2.5, sleep=lambda _s: None
    )
    start = threading.Barrier(5)

    def send(_: int) -> str:
        start.wait()
        try:
            governor.pace(FakeProvider("ses"))
        except ProviderThrottledError:
            return "throttled"
        return "paced"

    try:
        with ThreadPoolExecutor(max_workers=5) as pool:
            outcomes = list(pool.map(send, range(5)))
    finally:
        database.close()

    # Slots now, in 1 s and in 2 s fit a 2.5 s wait; the other two are refused.
    assert sorted(outcomes) == ["paced"] * 3 + ["throttled"] * 2


def test_with_the_database_down_sends_go_unpaced(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mmms.send_rate")
    down = Database(
        f"postgresql://postgres@127.0.0.1:{unused_port()}/postgres", timeout_seconds=0.2
    )
    governor = SendRateGovernor(SendSlotRepository(down), {"primary": 1.0}, sleep=never_sleep)
    provider = FakeProvider("primary")
    chain = ProviderChain([provider], pace=governor.pace)
    try:
        results = [chain.send(make_message()) for _ in range(3)]
    finally:
        down.close()

    assert [r.provider for r in results] == ["primary"] * 3  # not refused, not waited for
    assert len(provider.sent) == 3
    unpaced = [r for r in caplog.records if r.name == "mmms.send_rate"]
    assert [(r.levelname, r.getMessage(), getattr(r, "provider", None)) for r in unpaced] == [
        ("WARNING", "send rate unknown (database unreachable): not paced", "primary")
    ] * 3  # and names the provider sent to unpaced


def never_sleep(seconds: float) -> None:
    raise AssertionError(f"an unpaced send waited {seconds} s")


class FailingSchedule(SendSlotRepository):
    """The first reservation waits until released, then finds the database gone."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def reserve_many(
        self, provider: str, spacing_seconds: float, max_wait_seconds: float, count: int
    ) -> list[Slot]:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(timeout=10), "the test never released the reservation"
        raise DatabaseUnavailableError()


def test_a_leaders_failure_reaches_the_sends_queued_behind_it(clean_database: str) -> None:
    database = Database(clean_database, max_size=2)
    schedule = FailingSchedule(database)
    governor = SendRateGovernor(schedule, {"ses": 100.0}, sleep=never_sleep)
    # Daemon threads, not a pool: a send left waiting forever must fail the test, not hang it.
    sends = [in_a_thread(governor.pace, FakeProvider("ses")) for _ in range(5)]
    try:
        assert schedule.entered.wait(timeout=10)
        wait_until(
            lambda: queued_behind_the_leader(governor, "ses") == 4,
            "the four other sends to queue behind the first",
        )
        schedule.release.set()
        paced = [send.result(timeout=10) for send in sends]  # each is told, none waits forever
    finally:
        database.close()

    # The first reserved alone, the four queued behind it in one statement: its failure
    # reached the three waiting behind that statement's leader (the database is down, so
    # none is paced), and the coalescer is free again.
    assert paced == [0.0] * 5
    assert schedule.calls == 2
    assert governor.pace(FakeProvider("ses")) == 0.0
    assert schedule.calls == 3


def in_a_thread(function: Callable[..., float], *args: object) -> Future[float]:
    result: Future[float] = Future()

    def run() -> None:
        try:
            result.set_result(function(*args))
        except BaseException as err:
            result.set_exception(err)

    threading.Thread(target=run, daemon=True).start()
    return result


class SelfReporting(FakeProvider):
    """A provider that knows its own maximum rate, as SES reads its account's."""

    def max_send_rate(self) -> float:
        return 0.01  # one email every 100 s: the waits are whole, however slow the machine


def test_a_provider_without_a_configured_rate_is_paced_at_the_rate_it_reports(
    clean_database: str,
) -> None:
    database = Database(clean_database, max_size=2)
    waits: list[float] = []
    governor = SendRateGovernor(
        SendSlotRepository(database), {}, max_wait_seconds=1000, sleep=waits.append
    )
    try:
        paced = [governor.pace(SelfReporting("ses")) for _ in range(3)]
    finally:
        database.close()

    assert governor.rate_of(SelfReporting("ses")) == 0.01
    assert governor.rate_of(FakeProvider("ses")) is None
    assert [round(w) for w in paced] == [0, 100, 200]
    assert paced == waits


def test_the_default_wait_for_a_slot_is_ten_seconds(clean_database: str) -> None:
    database = Database(clean_database, max_size=2)
    governor = SendRateGovernor(
        SendSlotRepository(database), {"primary": 1.0}, sleep=lambda _s: None
    )
    try:
        paced = [governor.pace(FakeProvider("primary")) for _ in range(11)]  # now ... in 10 s
        with pytest.raises(ProviderThrottledError, match="for more than 10 s"):
            governor.pace(FakeProvider("primary"))
    finally:
        database.close()

    assert round(paced[-1]) == 10


def test_one_send_queued_behind_another_reserves_after_it(clean_database: str) -> None:
    database = Database(clean_database, max_size=2)
    schedule = GatedSchedule(database)
    governor = SendRateGovernor(schedule, {"ses": 1.0}, sleep=lambda _s: None)
    try:
        sends = [in_a_thread(governor.pace, FakeProvider("ses")) for _ in range(2)]
        assert schedule.entered.wait(timeout=10)
        wait_until(lambda: queued_behind_the_leader(governor, "ses") == 1, "the second to queue")
        schedule.release.set()
        paced = sorted(send.result(timeout=10) for send in sends)
    finally:
        database.close()

    assert [len(slots) for slots in schedule.granted] == [1, 1]
    assert [round(w) for w in paced] == [0, 1]


class StatementLog(SendSlotRepository):
    """The real schedule; the first statement waits for ``release``, the second for
    ``release_group``; each statement's request and answer are recorded."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.group_entered = threading.Event()
        self.release_group = threading.Event()
        self.statements: list[tuple[int, int]] = []  # (asked, granted)

    def reserve_many(
        self, provider: str, spacing_seconds: float, max_wait_seconds: float, count: int
    ) -> list[Slot]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(timeout=10)
        elif not self.group_entered.is_set():
            self.group_entered.set()
            assert self.release_group.wait(timeout=10)
        slots = super().reserve_many(provider, spacing_seconds, max_wait_seconds, count)
        self.statements.append((count, len(slots)))
        return slots


def test_a_group_larger_than_a_wait_can_cover_takes_what_fits_together_then_one_by_one(
    clean_database: str,
) -> None:
    """1 email/s and a 2.5 s wait: at most 3 slots (now, 1 s, 2 s) fit in any wait. Nine
    sends queued behind a first one reserve 3 together; then, the schedule being full, one
    more group and one single are tried and refused."""
    database = Database(clean_database, max_size=2)
    schedule = StatementLog(database)
    governor = SendRateGovernor(schedule, {"ses": 1.0}, max_wait_seconds=2.5, sleep=lambda _s: None)
    try:
        sends = [in_a_thread(paced_or_throttled, governor) for _ in range(10)]
        assert schedule.entered.wait(timeout=10)
        wait_until(lambda: queued_behind_the_leader(governor, "ses") == 9, "nine to queue")
        schedule.release.set()
        assert schedule.group_entered.wait(timeout=10)
        with psycopg.connect(clean_database) as conn:  # the first's slot is long past
            conn.execute("UPDATE send_rate_slots SET next_slot = now() - interval '1 hour'")
        schedule.release_group.set()
        outcomes = sorted(send.result(timeout=10) for send in sends)
    finally:
        database.close()

    assert schedule.statements == [(1, 1), (3, 3), (3, 0), (1, 0)]
    assert outcomes == ["paced"] * 4 + ["throttled"] * 6


def paced_or_throttled(governor: SendRateGovernor) -> str:
    try:
        governor.pace(FakeProvider("ses"))
    except ProviderThrottledError:
        return "throttled"
    return "paced"
