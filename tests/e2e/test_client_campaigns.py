"""Campaigns through the clients to ``completed`` under the stack ``make run`` starts.

Unlike ``test_clients.py`` (campaign files to S3 on moto, where nothing processes them), this
stack keeps ``make run``'s local uploads: the upload URL is the local server's, the local
worker runs the uploads handler and the campaign tick, and the capture provider sends. Each
client creates a campaign, uploads its file there and follows it until it is completed: the
Python library, ``mmms campaign send FILE --watch``, the JavaScript library in Node, and a page
in Debian's Chromium whose upload passes the local upload route's CORS preflight.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mmms_client import MmmsClient

from tests.e2e.test_clients import admin_token, chromium, mmms, node_test, unique
from tests.e2e.test_local_stack import ORIGIN, Stack, local_stack
from tests.support.database import isolated_schema

pytestmark = pytest.mark.e2e
CONTENT = {
    "sender_email": "hello@example.com",
    "subject": "Hi {{ name }}",
    "html_template": "<p>Hello {{ name }} on {{ plan }}</p>",
}


@pytest.fixture(scope="module")
def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("client-campaigns")
    with isolated_schema(postgres_url) as database, local_stack(home, DATABASE_URL=database) as up:
        yield up


def browser_key(stack: Stack) -> dict[str, Any]:
    with MmmsClient(stack.base, admin_token=admin_token(stack)) as admin:
        key: dict[str, Any] = dict(
            admin.create_key({"name": unique("campaign"), "origin_names": ["localhost:4321"]})
        )
    return key


def recipients_file(prefix: str, count: int = 3) -> tuple[str, list[str]]:
    addresses = [f"{prefix}-{uuid.uuid4().hex[:6]}-{i}@example.org" for i in range(count)]
    rows = "".join(f"{address},R {i},Pro\n" for i, address in enumerate(addresses))
    return "mail,name,plan\n" + rows, addresses


def outbox_to(stack: Stack) -> list[str]:
    messages = requests.get(f"{stack.base}/v1/dev/outbox?limit=100", timeout=10).json()["data"]
    return [m["to"] for m in messages["messages"]]


def sent(campaign: Any) -> int:
    counts = campaign["counts"]
    return int(counts.get("sent", 0)) + int(counts.get("delivered", 0))


def test_python_client_campaign_reaches_completed(stack: Stack) -> None:
    csv, addresses = recipients_file("py")
    progress: list[tuple[int, int]] = []
    seen: list[str] = []
    key = browser_key(stack)
    with MmmsClient(stack.base, key["api_key"], origin=ORIGIN) as client:
        created = client.create_campaign({"email_id": unique("py-campaign"), **CONTENT})
        client.upload_campaign_file(
            created, csv, on_progress=lambda done, total: progress.append((done, total))
        )
        done = client.wait_for_campaign(
            created["campaign_id"],
            interval=1.0,  # a browser key: 60 requests a minute per IP
            timeout=90,
            on_progress=lambda campaign: seen.append(campaign["status"]),
        )

    assert created["upload"]["url"].startswith(f"{stack.base}/v1/dev/campaign-uploads/")
    assert progress == [(len(csv), len(csv))]
    assert done["status"] == "completed", done
    assert done["counts"].get("queued", 0) == 0
    assert sent(done) == 3
    assert done["rows"]["valid"] == 3
    assert seen[-1] == "completed"
    delivered_to = " ".join(outbox_to(stack))
    assert all(address in delivered_to for address in addresses)


def test_mmms_campaign_send_watch_follows_it_to_completed(stack: Stack, tmp_path: Path) -> None:
    key = browser_key(stack)
    as_key = {"MMMS_API_KEY": key["api_key"], "MMMS_ORIGIN": ORIGIN}
    content = ("--from", "Hello <hello@example.com>", "--subject", "Hi {{ name }}",
               "--html", "<p>{{ plan }}</p>")  # fmt: skip
    listed = tmp_path / "list.csv"
    listed.write_text(recipients_file("cli")[0])
    as_json = mmms(stack, "campaign", "send", str(listed), *content, "--watch", "--json", **as_key)
    bar_file = tmp_path / "bar.csv"
    bar_file.write_text(recipients_file("bar")[0])
    # A terminal's output (rich draws its bars only there): the last frame of each bar.
    with_bar = mmms(stack, "campaign", "send", str(bar_file), *content, "--watch",
                    TTY_COMPATIBLE="1", TTY_INTERACTIVE="1", COLUMNS="100", **as_key)  # fmt: skip
    invalid = tmp_path / "invalid.csv"
    invalid.write_text("mail,name,plan\nnot an address,X,Pro\n")
    failed = mmms(stack, "campaign", "send", str(invalid), *content, "--watch", **as_key)

    assert as_json.returncode == 0, as_json.stderr
    campaign = json.loads(as_json.stdout)
    assert campaign["status"] == "completed"
    assert sent(campaign) == 3
    assert with_bar.returncode == 0, with_bar.stderr
    assert "completed" in with_bar.stdout
    assert "3/3" in with_bar.stdout  # the bar fed by the counts: every row no longer queued
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "failed" in failed.stderr
    assert "line 2" in failed.stderr


def test_js_client_campaign_in_node_reaches_completed(stack: Stack, tmp_path: Path) -> None:
    node_test(stack, tmp_path, "test/e2e/campaign.test.js")


def test_js_client_campaign_from_a_browser_page_reaches_completed(
    stack: Stack, tmp_path: Path
) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium (apt-get install -y chromium): the browser tests did not run")
    node_test(stack, tmp_path, "test/browser/campaign.test.js", MMMS_CHROMIUM=browser)
