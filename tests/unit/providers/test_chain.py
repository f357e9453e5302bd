"""ProviderChain: failover order, no failover on rejection, the circuit breaker."""

from __future__ import annotations

import pytest

from chalicelib.errors import (
    MessageRejectedError,
    ProviderThrottledError,
    ProviderUnavailableError,
)
from chalicelib.providers.base import MailProvider
from chalicelib.providers.chain import ProviderChain
from tests.support.fake_providers import FakeProvider, make_message


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_the_first_provider_sends_when_it_is_up() -> None:
    primary, secondary = FakeProvider("primary"), FakeProvider("secondary")

    result = ProviderChain([primary, secondary]).send(make_message())

    assert result.provider == "primary"
    assert len(primary.sent) == 1
    assert secondary.attempts == 0


def test_an_unavailable_primary_fails_over_and_the_result_names_the_sender() -> None:
    primary = FakeProvider("primary").fail_unavailable(times=1)
    secondary = FakeProvider("secondary")
    message = make_message()

    result = ProviderChain([primary, secondary]).send(message)

    assert result.provider == "secondary"
    assert result.message_id == "secondary-1"
    assert secondary.sent == [message]
    assert primary.sent == []


def test_a_rejection_stops_the_chain() -> None:
    primary = FakeProvider("primary").fail_rejected(times=1)
    secondary = FakeProvider("secondary")

    with pytest.raises(MessageRejectedError) as raised:
        ProviderChain([primary, secondary]).send(make_message())

    assert raised.value.provider == "primary"
    assert secondary.attempts == 0


def test_every_provider_unavailable_raises_with_each_reason() -> None:
    chain = ProviderChain(
        [FakeProvider("a").fail_unavailable(), FakeProvider("b").fail_unavailable()]
    )

    with pytest.raises(ProviderUnavailableError) as raised:
        chain.send(make_message())

    assert raised.value.provider == "chain"
    assert "a: scripted outage" in raised.value.message
    assert "b: scripted outage" in raised.value.message
    assert len(raised.value.response["failures"]) == 2


def test_the_circuit_opens_after_the_threshold_and_closes_after_the_cooldown() -> None:
    clock = FakeClock()
    primary = FakeProvider("primary").fail_unavailable()
    secondary = FakeProvider("secondary")
    chain = ProviderChain(
        [primary, secondary], failure_threshold=3, cooldown_seconds=30, clock=clock
    )

    for _ in range(3):
        assert chain.send(make_message()).provider == "secondary"
    assert primary.attempts == 3

    clock.advance(29)
    assert chain.send(make_message()).provider == "secondary"
    assert primary.attempts == 3  # open: not even tried

    primary.recover()
    clock.advance(2)
    assert chain.send(make_message()).provider == "primary"  # the half-open trial succeeds
    assert chain.send(make_message()).provider == "primary"  # and the circuit is closed
    assert primary.attempts == 5


def test_a_failed_trial_opens_the_circuit_for_another_cooldown() -> None:
    clock = FakeClock()
    primary = FakeProvider("primary").fail_unavailable()
    chain = ProviderChain(
        [primary, FakeProvider("secondary")], failure_threshold=1, cooldown_seconds=10, clock=clock
    )
    chain.send(make_message())
    clock.advance(10)

    chain.send(make_message())
    chain.send(make_message())

    assert primary.attempts == 2


def test_a_single_open_circuit_is_reported_as_unavailable() -> None:
    clock = FakeClock()
    only = FakeProvider("only").fail_unavailable(times=1)
    chain = ProviderChain([only], failure_threshold=1, cooldown_seconds=60, clock=clock)
    with pytest.raises(ProviderUnavailableError):
        chain.send(make_message())

    with pytest.raises(ProviderUnavailableError, match="only: circuit open"):
        chain.send(make_message())
    assert only.attempts == 1


def test_rejections_do_not_count_towards_opening_the_circuit() -> None:
    primary = FakeProvider("primary").fail_rejected(times=3)
    chain = ProviderChain([primary, FakeProvider("secondary")], failure_threshold=2)
    for _ in range(3):
        with pytest.raises(MessageRejectedError):
            chain.send(make_message())

    assert chain.send(make_message()).provider == "primary"


def test_close_closes_every_provider() -> None:
    providers = [FakeProvider("a"), FakeProvider("b")]

    ProviderChain(providers).close()

    assert all(p.closed for p in providers)


def test_the_chain_is_itself_a_mail_provider() -> None:
    assert isinstance(ProviderChain([FakeProvider()]), MailProvider)


def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one provider"):
        ProviderChain([])


class Sleeps:
    """Records the chain's backoff instead of sleeping; jitter is its upper bound."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def throttling_chain(*providers: MailProvider, sleeps: Sleeps) -> ProviderChain:
    return ProviderChain(
        list(providers),
        failure_threshold=2,
        throttle_retries=3,
        throttle_base_delay=0.2,
        throttle_max_delay=0.5,
        sleep=sleeps,
        jitter=lambda low, high: high,
    )


def test_a_throttled_send_is_retried_on_the_same_provider_with_backoff() -> None:
    primary = FakeProvider("primary").fail_throttled(times=3)
    secondary = FakeProvider("secondary")
    sleeps = Sleeps()

    result = throttling_chain(primary, secondary, sleeps=sleeps).send(make_message())

    assert result.provider == "primary"
    assert primary.attempts == 4
    assert secondary.attempts == 0
    assert sleeps.slept == [0.2, 0.4, 0.5]  # exponential, capped (jitter at its maximum)


def test_lasting_throttling_neither_fails_over_nor_opens_the_breaker() -> None:
    primary = FakeProvider("primary").fail_throttled()
    secondary = FakeProvider("secondary")
    chain = throttling_chain(primary, secondary, sleeps=Sleeps())

    for _ in range(5):  # well past the breaker's threshold of 2
        with pytest.raises(ProviderThrottledError):
            chain.send(make_message())
    primary.recover()
    result = chain.send(make_message())

    assert secondary.attempts == 0
    assert result.provider == "primary"  # its circuit stayed closed


def test_full_jitter_draws_each_delay_below_its_ceiling() -> None:
    primary = FakeProvider("primary").fail_throttled(times=2)
    draws: list[tuple[float, float]] = []
    chain = ProviderChain(
        [primary],
        throttle_base_delay=0.2,
        sleep=lambda _s: None,
        jitter=lambda low, high: draws.append((low, high)) or low,
    )

    chain.send(make_message())

    assert draws == [(0.0, 0.2), (0.0, 0.4)]
