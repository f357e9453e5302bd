"""The client's rules against a scripted server over real HTTP: retries, errors, paging."""

from __future__ import annotations

import asyncio
import json
import math
import time
from email.utils import formatdate
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from mmms_client import AsyncMmmsClient, MmmsClient, MmmsError
from mmms_client.models import SendMailRequest
from scripted_server import DROP, failure, ok, scripted

MAIL: SendMailRequest = {
    "email_id": "welcome-1",
    "recipients": [{"mail": "ann@example.org"}],
    "sender_email": "hello@example.com",
    "subject": "Hi",
    "html_template": "<p>Hi</p>",
}
SENT = {"message_id": "m-1", "ses_response": None, "status": {"status": "sent"}}


def client(url: str, **options: Any) -> MmmsClient:
    settings: dict[str, Any] = {"admin_token": "admin-secret", "retry_delay": 0.01} | options
    return MmmsClient(url + "/", "ak_test", **settings)


def test_a_429_is_retried_after_retry_after_and_the_200_gives_data() -> None:
    limited = failure(429, "rate_limited", "Too many requests", headers={"Retry-After": "1"})
    with scripted(limited, ok(SENT)) as server, client(server.url) as mmms:
        data = mmms.send_mail(MAIL)
    assert data == SENT
    assert [json.loads(seen.body) for seen in server.seen] == [MAIL, MAIL]
    assert server.seen[1].at - server.seen[0].at >= 0.95  # Retry-After: 1 was honoured


def test_a_503_and_a_dropped_connection_are_retried_for_a_get() -> None:
    unavailable = failure(503, "service_unavailable", "Database unavailable")
    with scripted(unavailable, DROP, ok({"n": 1})) as server, client(server.url) as mmms:
        assert mmms.get_recipient("e", "r") == {"n": 1}
    assert len(server.seen) == 3


def test_a_call_that_is_not_idempotent_is_never_retried() -> None:
    unavailable = failure(503, "service_unavailable", "Database unavailable")
    with (
        scripted(unavailable, ok({})) as server,
        client(server.url) as mmms,
        pytest.raises(MmmsError) as raised,
    ):
        mmms.create_key({"name": "k", "origin_names": []})
    assert (raised.value.status, raised.value.error_type) == (503, "service_unavailable")
    assert len(server.seen) == 1


def test_a_new_template_version_is_never_retried_and_a_preview_is() -> None:
    unavailable = failure(503, "service_unavailable", "Database unavailable")
    body: Any = {"name": "welcome", "subject": "Hi", "html": "<p>Hi</p>"}
    with (
        scripted(unavailable, unavailable, ok({"subject": "Hi"})) as server,
        client(server.url) as mmms,
    ):
        with pytest.raises(MmmsError):
            mmms.update_template("tpl_1", body)
        preview = mmms.preview_template("tpl_1")
    assert preview == {"subject": "Hi"}
    assert [(seen.method, seen.path) for seen in server.seen] == [
        ("PUT", "/v1/templates/tpl_1"),
        ("POST", "/v1/templates/tpl_1/preview"),
        ("POST", "/v1/templates/tpl_1/preview"),
    ]
    preview_headers = server.seen[1].headers
    assert (preview_headers["authorization"], preview_headers["x-api-key"]) == (
        "Bearer admin-secret",
        "ak_test",
    )


def test_retries_stop_after_retries_with_the_last_answer() -> None:
    limited = failure(429, "rate_limited", "Too many requests", headers={"Retry-After": "0"})
    with (
        scripted(limited) as server,
        client(server.url, retries=2) as mmms,
        pytest.raises(MmmsError) as raised,
    ):
        mmms.get_email("e")
    assert raised.value.status == 429
    assert len(server.seen) == 3


def test_with_the_defaults_a_429_is_tried_4_times_half_a_second_then_1_then_2_apart() -> None:
    limited = failure(429, "rate_limited", "Too many requests")  # no Retry-After: the backoff
    with (
        scripted(limited) as server,
        MmmsClient(server.url, "ak_test") as mmms,
        pytest.raises(MmmsError) as raised,
    ):
        mmms.get_email("e")
    gaps = [later.at - earlier.at for earlier, later in pairwise(server.seen)]
    assert raised.value.status == 429
    assert len(gaps) == 3
    for gap, backoff in zip(gaps, (0.5, 1.0, 2.0), strict=True):
        assert backoff - 0.01 <= gap < backoff + 0.4, gaps


def test_a_retry_after_given_as_an_http_date_is_waited_for_until_then() -> None:
    moment = math.ceil(time.time()) + 2  # HTTP dates count whole seconds
    date = formatdate(moment, usegmt=True)
    limited = failure(429, "rate_limited", "Too many requests", headers={"Retry-After": date})
    with scripted(limited, ok({"n": 1})) as server, client(server.url) as mmms:
        assert mmms.get_email("e") == {"n": 1}
        answered = time.time()
    assert len(server.seen) == 2
    assert answered >= moment - 0.01  # at least a second later: not the 0.01 s backoff


def test_a_retry_after_over_max_retry_delay_is_not_waited_for() -> None:
    quota = failure(429, "rate_limited", "Daily quota used", headers={"Retry-After": "3600"})
    with scripted(quota) as server, client(server.url) as mmms, pytest.raises(MmmsError):
        mmms.get_email("e")
    assert len(server.seen) == 1


def test_an_error_envelope_becomes_an_mmms_error_with_every_field() -> None:
    details = [{"type": "missing", "loc": ["body", "subject"], "msg": "Field required"}]
    invalid = failure(422, "validation_error", "Request validation failed", details=details)
    with (
        scripted(invalid) as server,
        client(server.url) as mmms,
        pytest.raises(MmmsError) as raised,
    ):
        mmms.send_mail(MAIL)
    error = raised.value
    assert (error.status, error.error_type, error.message, error.details, error.request_id) == (
        422,
        "validation_error",
        "Request validation failed",
        details,
        "req-1",
    )
    assert str(error) == "422 validation_error: Request validation failed (request id req-1)"
    assert len(server.seen) == 1


def test_an_answer_without_the_envelope_still_gives_an_mmms_error() -> None:
    gateway = {"status": 502, "text": "<html>Bad gateway</html>", "headers": {"X-Request-Id": "g7"}}
    with (
        scripted(gateway) as server,
        client(server.url, retries=0) as mmms,
        pytest.raises(MmmsError) as raised,
    ):
        mmms.get_email("e")
    assert (raised.value.status, raised.value.error_type, raised.value.request_id) == (
        502,
        "http_error",
        "g7",
    )
    assert raised.value.message == "GET /v1/mail/e answered 502"


def test_an_unreachable_service_is_a_network_error() -> None:
    with scripted(ok({})) as server:
        url = server.url
    with client(url, retries=1) as mmms, pytest.raises(MmmsError) as raised:
        mmms.get_email("e")
    assert (raised.value.status, raised.value.error_type) == (0, "network_error")
    assert raised.value.message.startswith(f"GET {url}/v1/mail/e failed: ")


def test_pages_are_followed_to_the_last() -> None:
    first = ok(
        {"email_id": "e", "count": 3, "recipients": [{"id": "a"}, {"id": "b"}], "next_cursor": "c2"}
    )
    last = ok({"email_id": "e", "count": 3, "recipients": [{"id": "c"}], "next_cursor": None})
    with scripted(first, last) as server, client(server.url) as mmms:
        seen = [r["id"] for r in mmms.recipients("e", status="sent", limit=2)]  # type: ignore[typeddict-item]
    assert seen == ["a", "b", "c"]
    assert [s.path for s in server.seen] == [
        "/v1/mail/e?status=sent&limit=2",
        "/v1/mail/e?status=sent&limit=2&cursor=c2",
    ]


def test_credentials_origin_and_captcha_travel_where_they_belong() -> None:
    options = {"origin": "http://localhost:4321", "captcha_token": "cap-1"}
    with scripted(ok({})) as server, client(server.url, **options) as mmms:
        mmms.send_mail(MAIL)
        mmms.remove_suppression("A+b@x.org")
        mmms.get_recipient("news 1/2", "r#1?")
    mail, suppression, recipient = server.seen
    assert mail.headers["x-api-key"] == "ak_test"
    assert "authorization" not in mail.headers
    assert mail.headers["origin"] == "http://localhost:4321"
    assert mail.headers["x-captcha-token"] == "cap-1"
    assert (suppression.method, suppression.path) == ("DELETE", "/v1/suppressions/A+b@x.org")
    assert recipient.path == "/v1/mail/news%201%2F2/recipients/r%231%3F"
    assert suppression.headers["authorization"] == "Bearer admin-secret"
    assert "x-api-key" not in suppression.headers


def test_the_async_client_keeps_the_same_rules() -> None:
    limited = failure(429, "rate_limited", "Too many requests", headers={"Retry-After": "0"})
    first = ok({"suppressions": [{"address": "a@x.org"}], "next_cursor": "n"})
    last = ok({"suppressions": [{"address": "b@x.org"}], "next_cursor": None})

    async def scenario(url: str) -> tuple[Any, list[str], MmmsError]:
        async with AsyncMmmsClient(url, "ak_test", admin_token="t", retry_delay=0.01) as mmms:
            sent = await mmms.send_mail(MAIL)
            listed = [entry["address"] async for entry in mmms.suppressions()]
            try:
                await mmms.create_key({"name": "k", "origin_names": []})
            except MmmsError as error:
                return sent, listed, error
        raise AssertionError("create_key should have failed")

    unavailable = failure(503, "service_unavailable", "Database unavailable")
    with scripted(limited, ok(SENT), first, last, unavailable) as server:
        sent, listed, error = asyncio.run(scenario(server.url))
    assert sent == SENT
    assert listed == ["a@x.org", "b@x.org"]
    assert error.status == 503
    assert len(server.seen) == 5  # the 429 once more, never the 503


def test_a_campaign_file_goes_to_its_target_with_its_length_never_with_the_key(
    tmp_path: Path,
) -> None:
    file = tmp_path / "recipients.csv"
    file.write_text("mail,name\n" + "ann@example.org,Ann\n" * 10000)
    target = {
        "method": "PUT",
        "headers": {"Content-Type": "text/csv"},
        "max_bytes": 1_000_000,
        "expires_at": "2030-01-01T00:00:00Z",
    }
    progress: list[tuple[int, int]] = []
    unavailable = failure(503, "service_unavailable", "Storage unavailable")
    with scripted({"status": 200, "text": ""}, unavailable) as server, client(server.url) as mmms:
        upload = target | {"url": f"{server.url}/uploads/cmp_1.csv"}
        mmms.upload_campaign_file(
            {"campaign_id": "cmp_1", "upload": upload},
            file,
            on_progress=lambda sent, total: progress.append((sent, total)),
        )
        with pytest.raises(MmmsError) as refused:
            mmms.upload_campaign_file(upload, "mail\nbo@example.org\n")
        with pytest.raises(MmmsError) as too_big:
            mmms.upload_campaign_file(upload | {"max_bytes": 3}, b"mail")
    sent = server.seen[0]
    size = file.stat().st_size
    assert (sent.method, sent.path, sent.body) == ("PUT", "/uploads/cmp_1.csv", file.read_bytes())
    assert (sent.headers["content-type"], sent.headers["content-length"]) == ("text/csv", str(size))
    assert "x-api-key" not in sent.headers
    assert "authorization" not in sent.headers
    assert len(progress) > 1
    assert progress[-1] == (size, size)
    assert refused.value.status == 503
    assert (too_big.value.status, too_big.value.error_type) == (413, "payload_too_large")
    assert len(server.seen) == 2  # never retried; the one over max_bytes never sent


def test_wait_for_campaign_polls_until_it_is_finished() -> None:
    def campaign(status: str) -> dict[str, Any]:
        return ok({"campaign_id": "cmp_1", "status": status, "counts": {"queued": 0}})

    seen: list[str] = []
    answers = (campaign("validating"), campaign("sending"), campaign("completed"))
    with scripted(*answers) as server, client(server.url) as mmms:
        done = mmms.wait_for_campaign(
            "cmp_1", interval=0.01, on_progress=lambda c: seen.append(c["status"])
        )
    with (
        scripted(campaign("sending")) as stuck,
        client(stuck.url) as mmms,
        pytest.raises(MmmsError) as timed_out,
    ):
        mmms.wait_for_campaign("cmp_1", interval=0.01, timeout=0.05)
    assert done["status"] == "completed"
    assert seen == ["validating", "sending", "completed"]
    assert (timed_out.value.status, timed_out.value.error_type) == (0, "timeout")


def test_the_async_client_uploads_and_waits_too(tmp_path: Path) -> None:
    async def scenario(url: str) -> Any:
        async with AsyncMmmsClient(url, "ak_test", retry_delay=0.01) as mmms:
            target = {"method": "PUT", "url": f"{url}/up", "headers": {}, "max_bytes": 100}
            await mmms.upload_campaign_file(target, "mail\nann@example.org\n")
            return await mmms.wait_for_campaign("cmp_1", interval=0.01)

    finished = ok({"campaign_id": "cmp_1", "status": "failed", "counts": {}})
    with scripted({"status": 200, "text": ""}, finished) as server:
        done = asyncio.run(scenario(server.url))
    assert done["status"] == "failed"
    assert server.seen[0].body == b"mail\nann@example.org\n"
