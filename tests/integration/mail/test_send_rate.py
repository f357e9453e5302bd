"""Send-rate governance: one schedule per provider in PostgreSQL, shared by every instance."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import boto3
import psycopg
import pytest
from chalice.test import Client

from chalicelib.db import Database
from chalicelib.errors import ProviderThrottledError
from chalicelib.providers.chain import ProviderChain
from chalicelib.providers.ses import SesProvider
from chalicelib.repositories.send_rate import SendSlotRepository, Slot
from chalicelib.services.send_rate import SendRateGovernor
from tests.integration.mail.conftest import Wire, mail_headers, seed_request
from tests.support.fake_providers import FakeProvider, make_message
from tests.support.moto_server import MotoServer
from tests.support.round_trips import RoundTripCounter


def test_two_consumers_with_their_own_pools_share_one_schedule(clean_database: str) -> None:
    first, second = Database(clean_database, max_size=5), Database(clean_database, max_size=5)
    spacing = 0.05  # 20 emails/s
    repositories = [SendSlotRepository(first), SendSlotRepository(second)]
    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            slots = list(
                pool.map(
                    lambda i: repositories[i % 2].reserve("ses", spacing, max_wait_seconds=20),
                    range(40),
                )
            )
    finally:
        first.close()
        second.close()

    times = sorted(slot.at for slot in slots if slot is not None)
    assert len(times) == 40
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(times)]
    assert min(gaps) >= spacing - 1e-6  # never two sends closer than the rate allows
    assert sum(slot.wait_seconds > 1.5 for slot in slots if slot) > 0  # the later ones wait


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
        with pytest.raises(ProviderThrottledError, match="budget full"):
            chain.send(make_message())
    finally:
        database.close()

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


class SlowSchedule(SendSlotRepository):
    """The real schedule, each reservation taking 50 ms: callers arriving meanwhile wait."""

    def reserve_many(
        self, provider: str, spacing_seconds: float, max_wait_seconds: float, count: int
    ) -> list[Slot]:
        time.sleep(0.05)
        return super().reserve_many(provider, spacing_seconds, max_wait_seconds, count)


def test_a_batchs_concurrent_sends_reserve_their_slots_together(clean_database: str) -> None:
    with RoundTripCounter(clean_database) as counter:
        database = Database(counter.conninfo, max_size=5)
        waits: list[float] = []
        governor = SendRateGovernor(
            SlowSchedule(database), {"ses": 100.0}, max_wait_seconds=5, sleep=waits.append
        )
        database.ping()
        before = counter.round_trips
        start = threading.Barrier(10)

        def send(_: int) -> float:
            start.wait()
            return governor.pace(FakeProvider("ses"))

        try:
            with ThreadPoolExecutor(max_workers=10) as pool:
                paced = list(pool.map(send, range(10)))
        finally:
            database.close()
        round_trips = counter.round_trips - before

    # The first reserves alone; the nine that arrived meanwhile share the next statement,
    # made 50 ms later: their ten-millisecond slots start then.
    assert round_trips == 2
    assert sorted(round(w, 2) for w in paced) == [0.0] + [round(0.01 * i, 2) for i in range(9)]


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
