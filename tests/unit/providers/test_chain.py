"""ProviderChain: failover order, no failover on rejection, the circuit breaker."""

from __future__ import annotations

import logging

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
    assert raised.value.message == (
        "chain: every provider is unavailable: a: scripted outage; b: scripted outage"
    )
    assert raised.value.response == {"failures": ["a: scripted outage", "b: scripted outage"]}


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
    with pytest.raises(ValueError, match=r"^failure_threshold must be at least 1$"):
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
    with pytest.raises(ValueError, match=r"^a provider chain needs at least one provider$"):
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


def test_the_defaults_are_three_failures_thirty_seconds_and_three_backed_off_retries() -> None:
    clock = FakeClock()
    primary = FakeProvider("primary").fail_unavailable()
    sleeps = Sleeps()
    chain = ProviderChain(
        [primary, FakeProvider("secondary")],
        clock=clock,
        sleep=sleeps,
        jitter=lambda low, high: high,
    )

    senders(chain, 4)
    assert primary.attempts == 3  # opened by the third failure in a row
    clock.advance(29.9)
    senders(chain, 1)
    assert primary.attempts == 3
    clock.advance(0.1)
    senders(chain, 1)
    assert primary.attempts == 4  # the trial, after 30 s

    throttled = FakeProvider("throttled").fail_throttled()
    with pytest.raises(ProviderThrottledError):
        ProviderChain([throttled], sleep=sleeps, jitter=lambda low, high: high).send(make_message())
    assert throttled.attempts == 4
    assert sleeps.slept == [0.2, 0.4, 0.8]


def test_backoff_is_capped_at_two_seconds_by_default() -> None:
    throttled = FakeProvider("throttled").fail_throttled(times=5)
    sleeps = Sleeps()
    chain = ProviderChain(
        [throttled], throttle_retries=5, sleep=sleeps, jitter=lambda low, high: high
    )

    chain.send(make_message())

    assert sleeps.slept == [0.2, 0.4, 0.8, 1.6, 2.0]


def test_a_lasting_throttle_is_tried_once_more_than_the_retries() -> None:
    throttled = FakeProvider("throttled").fail_throttled()
    chain = ProviderChain([throttled], throttle_retries=2, sleep=lambda _s: None)

    with pytest.raises(ProviderThrottledError):
        chain.send(make_message())

    assert throttled.attempts == 3


def chain_log(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, dict[str, object]]]:
    fields = ("provider", "next_provider", "reason", "mail_message_id")
    return [
        (
            r.levelname,
            r.getMessage(),
            {name: getattr(r, name) for name in fields if hasattr(r, name)},
        )
        for r in caplog.records
        if r.name == "mmms.providers"
    ]


def test_each_failover_is_logged_with_the_provider_the_next_one_and_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mmms.providers")
    clock = FakeClock()
    first = FakeProvider("first").fail_unavailable()
    second = FakeProvider("second").fail_unavailable()
    chain = ProviderChain([first, second], failure_threshold=1, clock=clock)
    message = make_message(message_id="<m-1@example.com>")

    for _ in range(2):
        with pytest.raises(ProviderUnavailableError):
            chain.send(message)

    failing_over = "mail provider unavailable, failing over"
    none_left = "mail provider unavailable, no provider left"
    one = "<m-1@example.com>"
    assert chain_log(caplog) == [
        ("WARNING", failing_over, {"provider": "first", "next_provider": "second",
                                   "reason": "first: scripted outage", "mail_message_id": one}),
        ("WARNING", none_left, {"provider": "second", "next_provider": None,
                                "reason": "second: scripted outage", "mail_message_id": one}),
        ("WARNING", failing_over, {"provider": "first", "next_provider": "second",
                                   "reason": "circuit open", "mail_message_id": one}),
        ("WARNING", none_left, {"provider": "second", "next_provider": None,
                                "reason": "circuit open", "mail_message_id": one}),
    ]  # fmt: skip


def test_a_throttled_provider_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mmms.providers")
    chain = ProviderChain(
        [FakeProvider("busy").fail_throttled()], throttle_retries=0, sleep=lambda _s: None
    )

    with pytest.raises(ProviderThrottledError):
        chain.send(make_message())

    assert chain_log(caplog) == [("INFO", "mail provider throttled", {"provider": "busy"})]
