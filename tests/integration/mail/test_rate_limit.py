"""Per-key rate limit: 429 with Retry-After beyond RATE_LIMIT_PER_MINUTE, nothing sent."""

from __future__ import annotations

from datetime import UTC, datetime

from chalice.test import Client

from tests.integration.mail.conftest import Wire, mail_headers, seed_request
from tests.support.fake_providers import FakeProvider
from tests.support.http import Answer, call, create_key


def three_sends(api: Client, key: str, round_: int) -> tuple[list[Answer], bool]:
    """Three sends within one minute window (False if the minute turned meanwhile)."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    answers = [
        call(
            api,
            "POST",
            "/v1/mail",
            headers=mail_headers(key),
            body=seed_request(email_id=f"rate-{round_}-{n}"),
        )
        for n in range(3)
    ]
    return answers, datetime.now(UTC).replace(second=0, microsecond=0) == minute


def test_over_the_limit_is_429_with_retry_after_and_nothing_is_sent(
    wire: Wire, api: Client, api_key: str
) -> None:
    provider = FakeProvider("fake")
    wire(sender=provider, rate_limit_per_minute=2)
    for round_ in range(2):  # a second round only if a minute boundary split the first
        answers, same_minute = three_sends(api, api_key, round_)
        if same_minute:
            break
        provider.sent.clear()
    other = call(
        api,
        "POST",
        "/v1/mail",
        headers=mail_headers(create_key(api, ["app.example.com"])["api_key"]),
        body=seed_request(email_id="other-key"),
    )

    assert [a.status for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.json["error_type"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["access-control-allow-origin"] == "https://app.example.com"
    assert len(provider.sent) == 3  # two for the limited key, one for the other key
    assert other.status == 200
