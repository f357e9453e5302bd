"""Per-key rate limit: 429 with Retry-After beyond RATE_LIMIT_PER_MINUTE, nothing sent.

The limiter's clock is a hand-moved one, so a minute boundary is crossed on purpose, not
by chance.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalice.test import Client

from chalicelib.repositories.rate_limits import RateLimitRepository
from chalicelib.services.rate_limit import RateLimiter
from tests.integration.mail.conftest import Wire, mail_headers, seed_request
from tests.support.fake_providers import FakeProvider
from tests.support.http import Answer, call, create_key


class WallClock:
    """A clock that stands still until it is set."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def send(api: Client, key: str, email_id: str) -> Answer:
    return call(
        api, "POST", "/v1/mail", headers=mail_headers(key), body=seed_request(email_id=email_id)
    )


def test_over_the_limit_is_429_with_retry_after_and_nothing_is_sent(
    wire: Wire, api: Client, api_key: str
) -> None:
    provider = FakeProvider("fake")
    container = wire(sender=provider, rate_limit_per_minute=2)
    clock = WallClock(datetime(2031, 5, 6, 12, 0, 30, 250_000, tzinfo=UTC))
    container.rate_limiter = RateLimiter(RateLimitRepository(container.database), 2, clock)

    answers = [send(api, api_key, f"rate-{n}") for n in range(3)]
    other = send(api, create_key(api, ["app.example.com"])["api_key"], "other-key")

    assert [a.status for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.json["error_type"] == "rate_limited"
    assert refused.headers["retry-after"] == "30"  # 29.75 s left in the minute, rounded up
    assert refused.headers["access-control-allow-origin"] == "https://app.example.com"
    assert other.status == 200
    assert len(provider.sent) == 3  # two for the limited key, one for the other key


def test_a_new_minute_starts_a_new_count(wire: Wire, api: Client, api_key: str) -> None:
    provider = FakeProvider("fake")
    container = wire(sender=provider, rate_limit_per_minute=2)
    clock = WallClock(datetime(2031, 5, 6, 12, 0, 59, 500_000, tzinfo=UTC))
    container.rate_limiter = RateLimiter(RateLimitRepository(container.database), 2, clock)

    before = [send(api, api_key, f"before-{n}") for n in range(3)]
    clock.now = datetime(2031, 5, 6, 12, 1, 0, tzinfo=UTC)
    after = [send(api, api_key, f"after-{n}") for n in range(3)]

    assert [a.status for a in before] == [200, 200, 429]
    assert before[2].headers["retry-after"] == "1"
    assert [a.status for a in after] == [200, 200, 429]  # the last minute's hits do not count
    assert after[2].headers["retry-after"] == "60"
    assert len(provider.sent) == 4


def test_prune_forgets_only_windows_older_than_ten_minutes(
    wire: Wire, api: Client, api_key: str
) -> None:
    container = wire(sender=FakeProvider("fake"), rate_limit_per_minute=100)
    now = datetime.now(UTC)
    clock = WallClock(now - timedelta(minutes=12))
    container.rate_limiter = RateLimiter(RateLimitRepository(container.database), 100, clock)
    send(api, api_key, "old")
    clock.now = now - timedelta(minutes=8)
    send(api, api_key, "recent")

    assert container.rate_limiter.prune() == 1
    with container.database.statement() as conn:
        starts = [
            r["window_start"] for r in conn.execute("SELECT window_start FROM rate_limit_windows")
        ]
    assert starts == [(now - timedelta(minutes=8)).replace(second=0, microsecond=0)]
    assert container.rate_limiter.prune() == 0
