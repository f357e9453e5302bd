"""`make run`'s program started as a user would: a subprocess, real HTTP on localhost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.moto_server import MotoServer
from tests.support.queues import create_queues
from tests.support.smtp_server import unused_port

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
ORIGIN = "http://localhost:4321"
OWN_VARIABLES = (
    "DATABASE_URL",
    "SECRET_NAME",
    "ADMIN_TOKEN",
    "ADMIN_SECRET_NAME",
    "MAIL_QUEUE_URL",
    "MAIL_RESULT_QUEUE_URL",
    "MAIL_PROVIDERS",
    "CAPTURE_DIR",
    "AWS_ENDPOINT_URL",
    "MMMS_DEV_ROUTES",
)


class Stack:
    def __init__(self, home: Path, port: int, process: subprocess.Popen[bytes], log: Path):
        self.home = home
        self.base = f"http://127.0.0.1:{port}"
        self.process = process
        self.log = log

    def admin(self) -> dict[str, str]:
        token = (self.home / "admin_token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: Any, headers: dict[str, str]) -> requests.Response:
        return requests.post(self.base + path, json=body, headers=headers, timeout=30)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base + path, timeout=30)

    def wait_for(self, path: str, count: int, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data: dict[str, Any] = self.get(path).json()["data"]
            if data["count"] >= count:
                return data
            time.sleep(0.25)
        raise AssertionError(f"{path} never reached {count}: {self.log.read_text()[-3000:]}")


@contextmanager
def local_stack(home: Path, **env: str) -> Iterator[Stack]:
    port = unused_port()
    environment = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    environment.update({"MMMS_HOME": str(home), "PORT": str(port), **env})
    log = home / f"run-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "mmms_local.run"],
            cwd=REPO,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    stack = Stack(home, port, process, log)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if requests.get(stack.base + "/v1/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.25)
        else:
            raise AssertionError(f"the stack did not start: {log.read_text()[-3000:]}")
        yield stack
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def create_key(stack: Stack) -> str:
    answer = stack.post(
        "/v1/api-key", {"name": "e2e", "origin_names": ["localhost:4321"]}, stack.admin()
    )
    assert answer.status_code == 200, answer.text
    key: str = answer.json()["data"]["api_key"]
    return key


def mail(**overrides: Any) -> dict[str, Any]:
    body = {
        "recipients": [{"name": "Ann", "mail": "ann@example.org", "emailRecipientId": "a"}],
        "sender_email": "hello@example.com",
        "sender_name": "Hello Team",
        "subject": "Hi {{ name }}",
        "html_template": "<p>Hello <em>{{ name }}</em> from {{ sender_name }}</p>",
        "email_id": "welcome-1",
    }
    return body | overrides


BULK = [
    {"name": "Bo <b>", "mail": "bo@example.org", "emailRecipientId": "b"},
    {"name": "Cy", "mail": "cy@example.org", "emailRecipientId": "c"},
    {"name": "Di", "mail": "di@example.org", "emailRecipientId": "d"},
]


@pytest.fixture
def embedded_home() -> Iterator[Path]:
    """A home outside pytest's temporary folders: the embedded PostgreSQL runs as a user of
    its own, which needs to traverse the folders above its data, and every pytest session
    started meanwhile (other runs on the machine) makes ``/tmp/pytest-of-<user>`` 0700 again;
    initdb then failed with "Permission denied"."""
    with tempfile.TemporaryDirectory(prefix="mmms-e2e-") as folder:
        yield Path(folder) / "home"


def test_single_and_bulk_mail_on_embedded_defaults_survive_a_restart(embedded_home: Path) -> None:
    home = embedded_home
    with local_stack(home) as stack:
        key = create_key(stack)
        headers = {"x-api-key": key, "Origin": ORIGIN}

        single = stack.post("/v1/mail", mail(), headers)
        bulk = stack.post("/v1/mail", mail(email_id="news-1", recipients=BULK), headers)
        outbox = stack.wait_for("/v1/dev/outbox", 4)
        results = stack.wait_for("/v1/dev/results", 8)
        page = stack.get(outbox["messages"][0]["html_url"])
        eml = stack.get(outbox["messages"][0]["eml_url"])
        first = stack.get("/v1/dev/outbox?limit=3").json()["data"]
        rest = stack.get(f"/v1/dev/outbox?limit=3&before={first['next_before']}").json()["data"]

    assert stack.process.returncode == 0
    assert "Stopped" in stack.log.read_text()
    assert single.status_code == 200
    assert single.json()["data"]["status"]["provider"] == "capture"
    assert bulk.status_code == 202
    # The capture provider simulates SES's events: each recipient is sent, then delivered.
    assert sorted(r["status"] for r in results["results"]) == ["delivered"] * 4 + ["sent"] * 4
    files = sorted((home / "outbox").glob("*.eml"))
    assert len(files) == 4
    parsed = {}
    for file in files:
        message = BytesParser(policy=policy.default).parsebytes(file.read_bytes())
        parsed[str(message["To"])] = message
    bo = parsed['"Bo <b>" <bo@example.org>'].get_body(("html",))
    assert bo is not None
    assert "Hello <em>Bo &lt;b&gt;</em> from Hello Team" in bo.get_content()
    newest = outbox["messages"][0]["id"]
    assert eml.headers["content-type"] == "message/rfc822"
    assert eml.content == (home / "outbox" / f"{newest}.eml").read_bytes()
    assert [m["id"] for m in first["messages"] + rest["messages"]] == [
        f.stem for f in sorted(files, reverse=True)
    ]
    assert rest["next_before"] is None
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "srcdoc=" in page.text

    with local_stack(home) as again:  # the same data is found again
        replay = again.post("/v1/mail", mail(), {"x-api-key": key, "Origin": ORIGIN})
    assert replay.status_code == 200
    assert replay.json()["data"]["message_id"] == single.json()["data"]["message_id"]
    assert len(list((home / "outbox").glob("*.eml"))) == 4


def test_the_same_command_uses_real_services_when_configured(
    tmp_path: Path, moto: MotoServer, clean_database: str
) -> None:
    queues = create_queues(moto, max_receives=3)
    env = {
        "DATABASE_URL": clean_database,
        "MAIL_QUEUE_URL": queues.processing,
        "MAIL_RESULT_QUEUE_URL": queues.result,
        "AWS_ENDPOINT_URL": moto.endpoint_url,
        "AWS_DEFAULT_REGION": moto.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "ADMIN_TOKEN": "e2e-admin-token-0123456789",
    }
    home = tmp_path / "home"
    home.mkdir()
    (home / "admin_token").write_text(env["ADMIN_TOKEN"])
    with local_stack(home, **env) as stack:
        key = create_key(stack)
        bulk = stack.post(
            "/v1/mail",
            mail(email_id="news-2", recipients=BULK),
            {"x-api-key": key, "Origin": ORIGIN},
        )
        deadline = time.monotonic() + 30
        results: list[dict[str, Any]] = []
        while len(results) < 6 and time.monotonic() < deadline:
            results += queues.drain_json(queues.result)
            time.sleep(0.25)

    assert bulk.status_code == 202
    # Without an events queue the capture provider's simulated events are applied at once.
    assert sorted((r["email_recipient_id"], r["status"]) for r in results) == [
        (rid, status) for rid in "bcd" for status in ("delivered", "sent")
    ]
    assert not (home / "pgdata").exists()  # DATABASE_URL was used, nothing embedded
    assert len(list((home / "outbox").glob("*.eml"))) == 3
    assert (
        json.loads(
            queues.sqs.get_queue_attributes(
                QueueUrl=queues.processing, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        == 0
    )


def test_a_campaign_file_goes_to_the_local_server_and_is_sent(embedded_home: Path) -> None:
    """Under `make run` the upload URL is the local server's: it keeps the file in the data
    folder and the worker processes it as the uploads queue's Lambda would."""
    with local_stack(embedded_home, CAMPAIGN_MAX_BYTES="4096") as stack:
        headers = {"x-api-key": create_key(stack), "Origin": ORIGIN}
        created = stack.post(
            "/v1/campaigns",
            {
                key: value
                for key, value in mail(email_id="campaign-1").items()
                if key != "recipients"
            },
            headers,
        )
        upload = created.json()["data"]["upload"]
        data = b"mail,name\r\nann@example.org,Ann\r\nben@example.org,Ben\r\n"
        preflight = requests.options(upload["url"], timeout=10)
        sent = requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30)
        again = requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30)
        outbox = stack.wait_for("/v1/dev/outbox", 2)
        campaign_id = created.json()["data"]["campaign_id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = requests.get(
                f"{stack.base}/v1/campaigns/{campaign_id}", headers=headers, timeout=10
            ).json()["data"]
            if status["status"] == "completed":
                break
            time.sleep(0.25)
        other = stack.post(
            "/v1/campaigns",
            {
                key: value
                for key, value in mail(email_id="campaign-2").items()
                if key != "recipients"
            },
            headers,
        ).json()["data"]["upload"]
        too_large = requests.put(
            other["url"], data=b"x" * 5000, headers=other["headers"], timeout=30
        )

    assert created.status_code == 201
    assert upload["url"].startswith(f"{stack.base}/v1/dev/campaign-uploads/uploads/cmp_")
    assert preflight.headers["access-control-allow-methods"] == "PUT"
    assert sent.status_code == 200
    assert again.status_code == 409
    assert too_large.status_code == 413
    assert status["status"] == "completed"
    assert status["counts"]["sent"] + status["counts"]["delivered"] == 2  # capture simulates SES
    assert sorted(m["to"] for m in outbox["messages"])[0].endswith("ann@example.org>")
    assert (embedded_home / "uploads" / f"{campaign_id}.csv").read_bytes() == data
