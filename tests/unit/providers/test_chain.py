"""ProviderChain: failover order, no failover on rejection, the circuit breaker."""

from __future__ import annotations

import pytest

from chalicelib.errors import (
    MessageRejectedError,
    ProviderThrottledError,
    ProviderUnavailableError,
)
from chalicelib.providers.base import MailProvider
from chalicelib.providers.chain import CircuitBreaker, ProviderChain
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


def breaker_chain(
    primary: FakeProvider, clock: FakeClock, *, threshold: int = 3, cooldown: float = 30
) -> ProviderChain:
    return ProviderChain(
        [primary, FakeProvider("secondary")],
        failure_threshold=threshold,
        cooldown_seconds=cooldown,
        clock=clock,
    )


def senders(chain: ProviderChain, sends: int) -> list[str]:
    return [chain.send(make_message()).provider for _ in range(sends)]


def test_the_circuit_opens_after_the_threshold_and_stays_open_for_the_cooldown() -> None:
    clock = FakeClock()
    primary = FakeProvider("primary").fail_unavailable()
    chain = breaker_chain(primary, clock)

    assert senders(chain, 3) == ["secondary"] * 3
    assert primary.attempts == 3
    clock.advance(29.9)
    assert senders(chain, 2) == ["secondary"] * 2
    assert primary.attempts == 3  # open: not even tried


def test_after_the_cooldown_one_trial_goes_through_and_a_success_closes_the_circuit() -> None:
    clock = FakeClock()
    primary = FakeProvider("primary").fail_unavailable()
    chain = breaker_chain(primary, clock)
    senders(chain, 3)

    primary.recover()
    clock.advance(30)

    assert senders(chain, 3) == ["primary"] * 3  # the trial, then closed
    assert primary.attempts == 6


def test_a_failed_trial_opens_the_circuit_for_a_whole_cooldown_from_the_trial() -> None:
    clock = FakeClock()
    primary = FakeProvider("primary").fail_unavailable()
    chain = breaker_chain(primary, clock)
    senders(chain, 3)
    clock.advance(30)

    assert senders(chain, 1) == ["secondary"]  # the trial failed: one failure re-opens it
    assert primary.attempts == 4
    clock.advance(29.9)
    assert senders(chain, 1) == ["secondary"]
    assert primary.attempts == 4  # skipped: the new cool-down counts from the trial
    primary.recover()
    clock.advance(0.1)
    assert senders(chain, 2) == ["primary", "primary"]  # the next trial, then closed


def test_a_closed_circuit_needs_the_whole_threshold_again() -> None:
    clock = FakeClock()
    primary = FakeProvider("primary").fail_unavailable()
    chain = breaker_chain(primary, clock)
    senders(chain, 3)
    primary.recover()
    clock.advance(30)
    senders(chain, 1)  # the trial closes the circuit

    primary.fail_unavailable(times=2)
    assert senders(chain, 3) == ["secondary", "secondary", "primary"]
    assert primary.attempts == 7  # two failures in a row are below the threshold: still tried


def test_a_success_resets_the_count_of_failures_in_a_row() -> None:
    clock = FakeClock()
    primary = FakeProvider("primary").fail_unavailable(times=2)
    chain = breaker_chain(primary, clock)

    assert senders(chain, 3) == ["secondary", "secondary", "primary"]
    primary.fail_unavailable(times=2)
    assert senders(chain, 3) == ["secondary", "secondary", "primary"]  # 2 + 2, never 3 in a row
    assert primary.attempts == 6


def test_a_half_open_circuit_lets_exactly_one_trial_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=10, clock=clock)
    breaker.record_failure()
    clock.advance(10)

    assert breaker.allow() is True  # the trial
    assert breaker.allow() is False  # while it runs, nobody else
    clock.advance(10)
    assert breaker.allow() is True  # a trial that never reported: another after a cool-down


def test_a_breaker_needs_a_threshold_of_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CircuitBreaker(failure_threshold=0, cooldown_seconds=1, clock=FakeClock())


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
