"""The client libraries and the ``mmms`` command against the app started as ``make run`` does.

One stack per test module (its own PostgreSQL schema, local queues, the capture provider):
the Python library in-process, the ``mmms`` command as a subprocess, and the JavaScript
library in Node and in Debian's Chromium (``node --test`` files under ``clients/js/test``),
from the package as ``npm install`` puts it in a project of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mmms_client import AsyncMmmsClient, MmmsClient, MmmsError
from mmms_client.models import SendMailRequest

from tests.e2e.test_local_stack import ORIGIN, Stack, local_stack
from tests.support.campaigns import create_uploads
from tests.support.captcha_verifier import SECRET, Verifier, running_verifier
from tests.support.database import isolated_schema
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
JS = REPO / "clients" / "js"
MMMS = Path(sys.executable).parent / "mmms"
BUCKET = "mmms-client-uploads"  # made on moto by each test that uploads (moto is reset per test)
CSV = "mail,name,plan\n" + "".join(f"r{i}@example.org,R {i},Pro\n" for i in range(5000))


def chromium() -> str | None:
    """The Chromium the browser tests use: $CHROMIUM, else Debian's, else none."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return found if Path(found).is_file() else None


@pytest.fixture(scope="module")
def verifier() -> Iterator[Verifier]:
    with running_verifier() as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    postgres_url: str,
    verifier: Verifier,
    moto_session: MotoServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    captcha = {
        "CAPTCHA_PROVIDER": "turnstile",
        "CAPTCHA_SECRET": SECRET,
        "CAPTCHA_VERIFY_URL": verifier.url,
        # Campaign files go to S3 (moto's, over HTTP) through presigned PUT URLs.
        "CAMPAIGN_BUCKET": BUCKET,
        "AWS_ENDPOINT_URL": moto_session.endpoint_url,
        "AWS_DEFAULT_REGION": moto_session.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    home = tmp_path_factory.mktemp("clients")
    with (
        isolated_schema(postgres_url) as database,
        local_stack(home, DATABASE_URL=database, **captcha) as up,
    ):
        yield up


def admin_token(stack: Stack) -> str:
    return (stack.home / "admin_token").read_text().strip()


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def mail(email_id: str, *addresses: str) -> SendMailRequest:
    return {
        "email_id": email_id,
        "recipients": [{"mail": a, "emailRecipientId": a.split("@")[0]} for a in addresses],
        "sender_email": "hello@example.com",
        "subject": "Hi {{ name }}",
        "html_template": "<p>Hello {{ name }}</p>",
    }


def test_python_client_sends_pages_and_raises_the_envelope(stack: Stack) -> None:
    with MmmsClient(stack.base, admin_token=admin_token(stack)) as admin:
        key = admin.create_key({"name": unique("python"), "origin_names": ["localhost:4321"]})
        with MmmsClient(stack.base, key["api_key"], origin=ORIGIN) as mmms:
            single = mmms.send_mail(mail(unique("one"), "ann@example.org"))
            news = unique("news")
            bulk = mmms.send_mail(mail(news, "bo@example.org", "cy@example.org", "di@example.org"))
            paged = [r["email_recipient_id"] for r in mmms.recipients(news, limit=1)]
            history = mmms.get_recipient(news, "bo")
            odd = unique("a/b c#?%é+@")  # every path character that needs care, decoded once
            mmms.send_mail(mail(odd, "ed@example.org"))
            odd_page = mmms.get_email(odd)
            with pytest.raises(MmmsError) as invalid:
                mmms.send_mail(mail(unique("bad"), "not an address"))
            with pytest.raises(MmmsError) as unknown:
                mmms.get_email(unique("nobody"))
        address = f"{unique('x')}+tag@example.org"
        added = admin.add_suppressions([address])
        listed = [entry["address"] for entry in admin.suppressions(limit=1)]
        removed = admin.remove_suppression(address)
        admin.delete_key(key["key_id"])
    gone = MmmsClient(stack.base, key["api_key"], origin=ORIGIN)
    with gone, pytest.raises(MmmsError) as refused:
        gone.get_email(news)

    assert "message_id" in single
    assert single["status"]["status"] == "sent"
    assert "recipients" in bulk
    assert bulk["count"] == 3
    assert sorted(paged) == ["bo", "cy", "di"]
    assert history["recipient"] == "bo@example.org"
    assert odd_page["email_id"] == odd
    assert [r["email_recipient_id"] for r in odd_page["recipients"]] == ["ed"]
    assert (invalid.value.status, invalid.value.error_type) == (422, "validation_error")
    assert invalid.value.request_id
    assert (unknown.value.status, unknown.value.error_type) == (404, "not_found")
    assert [entry["address"] for entry in added["added"]] == [address]
    assert address in listed
    assert removed["address"] == address
    assert (refused.value.status, refused.value.error_type) == (401, "unauthorized")
    assert refused.value.message.startswith("Unauthorized - ")


def test_python_client_keys_policies_templates_and_server_keys(stack: Stack) -> None:
    with MmmsClient(stack.base, admin_token=admin_token(stack)) as admin:
        body: Any = {
            "name": unique("welcome"),
            "subject": "Hi {{ name }}",
            "html": "<p>Hello {{ name }}, welcome to {{ plan }}</p>",
            "sample_params": {"plan": "Pro"},
        }
        first = admin.create_template(body)
        template_id = first["template_id"]
        listed = [t["template_id"] for t in admin.templates(limit=1)]
        second = admin.update_template(template_id, body | {"subject": "Welcome, {{ name }}"})
        again_first = admin.get_template(template_id, version=1)
        preview = admin.preview_template(
            template_id, {"params": {"plan": "Team"}, "recipient": {"name": "Ann"}}
        )
        key = admin.create_key(
            {
                "name": unique("policy"),
                "origin_names": ["localhost:4321"],
                "policy": {"inline_templates": False},
            }
        )
        shown = admin.get_key(key["key_id"])
        with MmmsClient(stack.base, key["api_key"], origin=ORIGIN) as mmms:
            email_id = unique("templated")
            templated: Any = {
                "email_id": email_id,
                "sender_email": "hello@example.com",
                "recipients": [{"name": "Ann", "mail": "ann@example.org"}],
                "template_id": template_id,
                "params": {"plan": "Pro"},
            }
            sent = mmms.send_mail(templated)
            with pytest.raises(MmmsError) as inline:
                mmms.send_mail(mail(unique("inline"), "bo@example.org"))
        patched = admin.update_key(key["key_id"], {"policy": {"inline_templates": True}})
        server = admin.create_key({"name": unique("server"), "kind": "server"})
        pasted = MmmsClient(stack.base, server["api_key"], origin=ORIGIN)  # a page's Origin
        with pasted, pytest.raises(MmmsError) as from_a_page:
            pasted.send_mail(mail(unique("pasted"), "cy@example.org"))
        with MmmsClient(stack.base, server["api_key"]) as backend:
            from_a_backend = backend.send_mail(mail(unique("backend"), "cy@example.org"))
        archived = admin.delete_template(template_id)

    assert (first["version"], second["version"], again_first["subject"]) == (1, 2, "Hi {{ name }}")
    assert first["params"] == ["plan"]
    assert template_id in listed
    assert preview["subject"] == "Welcome, Ann"
    assert "welcome to Team" in preview["html"]
    assert shown["kind"] == "browser"
    assert shown["policy"]["inline_templates"] is False
    assert "status" in sent
    assert sent["status"]["status"] == "sent"
    assert (inline.value.status, inline.value.error_type) == (403, "forbidden")
    assert ["subject"] in [detail["loc"] for detail in inline.value.details]
    assert patched["policy"]["inline_templates"] is True
    assert (from_a_page.value.status, from_a_page.value.error_type) == (403, "forbidden")
    assert from_a_page.value.details[0]["loc"] == ["Origin"]
    assert "status" in from_a_backend
    assert from_a_backend["status"]["status"] == "sent"
    assert archived["archived"] is True


def campaign_key(stack: Stack) -> MmmsClient:
    with MmmsClient(stack.base, admin_token=admin_token(stack)) as admin:
        key = admin.create_key({"name": unique("campaign"), "origin_names": ["localhost:4321"]})
    return MmmsClient(stack.base, key["api_key"], origin=ORIGIN)


def test_python_client_campaigns_upload_to_the_presigned_url(
    stack: Stack, moto: MotoServer
) -> None:
    uploads = create_uploads(moto, BUCKET)
    progress: list[tuple[int, int]] = []
    with campaign_key(stack) as mmms:
        created = mmms.create_campaign(
            {
                "email_id": unique("campaign"),
                "sender_email": "hello@example.com",
                "subject": "Hi {{ name }}",
                "html_template": "<p>Hello {{ name }} on {{ plan }}</p>",
            }
        )
        mmms.upload_campaign_file(
            created, CSV, on_progress=lambda sent, total: progress.append((sent, total))
        )
        listed = [c["campaign_id"] for c in mmms.campaigns(limit=1)]
        cancelled = mmms.cancel_campaign(created["campaign_id"])
        with pytest.raises(MmmsError) as again:
            mmms.cancel_campaign(created["campaign_id"])
        shown = mmms.get_campaign(created["campaign_id"])
    stored = uploads.s3.get_object(Bucket=BUCKET, Key=f"uploads/{created['campaign_id']}.csv")

    assert created["status"] == "awaiting_upload"
    assert stored["Body"].read() == CSV.encode()  # the presigned PUT took the streamed body
    assert len(progress) == -(-len(CSV) // 65536)  # one step per 64 KiB chunk
    assert progress[-1] == (len(CSV), len(CSV))
    assert created["campaign_id"] in listed
    assert cancelled["status"] == "cancelled"
    assert (again.value.status, again.value.error_type) == (409, "conflict")
    assert shown["status"] == "cancelled"


def test_async_python_client_against_the_app(stack: Stack) -> None:
    async def scenario() -> tuple[Any, list[str]]:
        async with AsyncMmmsClient(stack.base, admin_token=admin_token(stack)) as admin:
            key = await admin.create_key({"name": unique("async"), "origin_names": []})
            await admin.add_origins(key["key_id"], ["localhost:4321"])
        async with AsyncMmmsClient(stack.base, key["api_key"], origin=ORIGIN) as mmms:
            email_id = unique("async")
            sent = await mmms.send_mail(mail(email_id, "a@example.org", "b@example.org"))
            seen = [r["email_recipient_id"] async for r in mmms.recipients(email_id, limit=1)]
        return sent, seen

    sent, seen = asyncio.run(scenario())
    assert sent.get("count") == 2
    assert sorted(seen) == ["a", "b"]


def mmms(stack: Stack, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMMS_")}
    env |= {"MMMS_URL": stack.base, "MMMS_ADMIN_TOKEN": admin_token(stack), **environment}
    return subprocess.run(
        [str(MMMS), *arguments], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def json_of(run: subprocess.CompletedProcess[str]) -> Any:
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_mmms_command_end_to_end(stack: Stack) -> None:
    key = json_of(
        mmms(stack, "keys", "create", unique("cli"), "--origin", "localhost:4321", "--json")
    )
    as_key = {"MMMS_API_KEY": key["api_key"], "MMMS_ORIGIN": ORIGIN}
    news = unique("cli")
    sent = mmms(
        stack,
        "send",
        "--from",
        "Hello Team <hello@example.com>",
        "--to",
        "Ann <ann@example.org>",
        "--to",
        "bo@example.org",
        "--subject",
        "Hi {{ name }}",
        "--html",
        "<p>Hello {{ name }} from {{ sender_name }}</p>",
        "--email-id",
        news,
        **as_key,
    )
    watched = json_of(mmms(stack, "--json", "status", news, "--watch", **as_key))
    table = mmms(stack, "status", news, "--watch", **as_key)
    address = f"{unique('y')}+tag@example.org"
    suppressed = mmms(stack, "suppressions", "add", address)
    listed = json_of(mmms(stack, "suppressions", "list", "--address", address, "--json"))
    removed = mmms(stack, "suppressions", "remove", address)
    invalid = mmms(
        stack,
        "send",
        "--from",
        "hello@example.com",
        "--to",
        "x@example.org",
        "--subject",
        "Hi {{ nobody }}",
        "--html",
        "<p>x</p>",
        **as_key,
    )
    deleted = mmms(stack, "keys", "delete", key["key_id"])
    refused = mmms(stack, "status", news, **as_key)
    unreachable = mmms(stack, "status", news, MMMS_URL="http://127.0.0.1:9", **as_key)
    usage = mmms(stack, "send", "--from", "a@example.com", "--to", "b@example.org", **as_key)

    assert sent.returncode == 0, sent.stderr
    assert news in sent.stdout
    assert sorted((r["recipient"], r["status"]) for r in watched["recipients"]) == [
        ("ann@example.org", "delivered"),
        ("bo@example.org", "delivered"),
    ]
    assert table.returncode == 0
    assert "ann@example.org" in table.stdout
    assert table.stdout.count("delivered") == 2
    assert table.stdout.endswith("┘\n")  # one settled table, no live frames in a pipe
    assert suppressed.returncode == 0
    assert address in suppressed.stdout
    assert [entry["address"] for entry in listed["suppressions"]] == [address]
    assert removed.returncode == 0
    assert invalid.returncode == 1
    assert invalid.stderr.startswith("mmms: 422 validation_error: ")
    assert "(request id " in invalid.stderr
    assert "nobody" in invalid.stderr
    assert deleted.returncode == 0
    assert refused.returncode == 1
    assert refused.stderr.startswith("mmms: 401 unauthorized: Unauthorized - ")
    assert unreachable.returncode == 3
    assert "network_error" in unreachable.stderr
    assert usage.returncode == 2
    assert "--template" in usage.stderr


def test_mmms_templates_push_list_preview_send_and_key_policies(
    stack: Stack, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    welcome = tmp_path / f"welcome-{suffix}"  # a template per folder
    welcome.mkdir()
    (welcome / "subject").write_text("Welcome, {{ name }}\n")
    (welcome / "body.html").write_text("<p>Hi {{ name }}, your plan: {{ plan }}</p>")
    (welcome / "body.txt").write_text("Hi {{ name }}, your plan: {{ plan }}")
    (welcome / "sample_params.json").write_text('{"plan": "Pro"}')
    flat = tmp_path / "flat"  # a folder of NAME.html + NAME.subject
    flat.mkdir()
    (flat / f"receipt-{suffix}.html").write_text("<p>Paid, {{ name }}</p>")
    (flat / f"receipt-{suffix}.subject").write_text("Your receipt")

    created = json_of(mmms(stack, "templates", "push", str(welcome), str(flat), "--json"))
    unchanged = json_of(mmms(stack, "templates", "push", str(welcome), "--json"))
    (welcome / "subject").write_text("Welcome aboard, {{ name }}")
    updated = json_of(mmms(stack, "templates", "push", str(welcome), "--json"))
    listed = json_of(mmms(stack, "templates", "list", "--json"))
    template_id = updated["templates"][0]["template_id"]
    preview = mmms(stack, "templates", "preview", template_id, "--param", "plan=Team",
                   "--to", "Ann <ann@example.org>")  # fmt: skip
    policy = '{"allowed_senders": ["@example.com"]}'
    server = json_of(mmms(stack, "keys", "create", unique("srv"), "--kind", "server",
                          "--policy", policy, "--json"))  # fmt: skip
    shown = json_of(mmms(stack, "keys", "show", server["key_id"], "--json"))
    table = mmms(stack, "keys", "show", server["key_id"])
    policy_file = tmp_path / "policy.json"
    policy_file.write_text('{"allowed_senders": ["@example.org"]}')
    patched = json_of(
        mmms(stack, "keys", "update", server["key_id"], "--policy", f"@{policy_file}", "--json")
    )
    as_server = {"MMMS_API_KEY": server["api_key"]}
    to_bo = ("--to", "Bo <bo@example.org>", "--template", template_id, "--param", "plan=Max")
    sent = json_of(mmms(stack, "send", "--from", "news@example.org", *to_bo, "--json", **as_server))
    refused = mmms(stack, "send", "--from", "news@example.com", *to_bo, **as_server)
    bad_policy = mmms(stack, "keys", "update", server["key_id"], "--policy", "[1]")

    assert sorted((t["name"], t["action"], t["version"]) for t in created["templates"]) == [
        (f"receipt-{suffix}", "created", 1),
        (f"welcome-{suffix}", "created", 1),
    ]
    assert {t["name"]: t["params"] for t in created["templates"]} == {
        f"receipt-{suffix}": [],
        f"welcome-{suffix}": ["plan"],
    }
    assert [(t["action"], t["version"]) for t in unchanged["templates"]] == [("unchanged", 1)]
    assert [(t["action"], t["version"]) for t in updated["templates"]] == [("updated", 2)]
    assert template_id in [t["template_id"] for t in listed["templates"]]
    assert preview.returncode == 0, preview.stderr
    assert "Subject: Welcome aboard, Ann" in preview.stdout
    assert "your plan: Team" in preview.stdout
    assert (shown["kind"], shown["policy"]["allowed_senders"]) == ("server", ["@example.com"])
    assert "policy.allowed_senders" in table.stdout
    assert patched["policy"]["allowed_senders"] == ["@example.org"]
    assert sent["status"]["status"] == "sent"
    assert refused.returncode == 1
    assert refused.stderr.startswith("mmms: 403 forbidden: ")
    assert "sender_email" in refused.stderr
    assert bad_policy.returncode == 2


def test_mmms_campaign_send_uploads_the_file(
    stack: Stack, moto: MotoServer, tmp_path: Path
) -> None:
    uploads = create_uploads(moto, BUCKET)
    key = json_of(
        mmms(stack, "keys", "create", unique("cli"), "--origin", "localhost:4321", "--json")
    )
    as_key = {"MMMS_API_KEY": key["api_key"], "MMMS_ORIGIN": ORIGIN}
    recipients = tmp_path / "list.csv"
    recipients.write_text(CSV)
    content = ("--subject", "Hi {{ name }}", "--html", "<p>{{ plan }}</p>")
    sent = json_of(mmms(stack, "campaign", "send", str(recipients), "--from", "a@example.com",
                        *content, "--json", **as_key))  # fmt: skip
    shown = mmms(stack, "campaign", "send", str(recipients), "--from", "a@example.com", *content,
                 **as_key)  # fmt: skip
    usage = mmms(stack, "campaign", "send", str(recipients), "--from", "a@example.com", **as_key)

    stored = uploads.s3.get_object(Bucket=BUCKET, Key=f"uploads/{sent['campaign_id']}.csv")
    assert stored["Body"].read() == CSV.encode()
    assert sent["status"] == "awaiting_upload"  # nothing processes S3's notification here
    assert shown.returncode == 0, shown.stderr
    assert "campaign_id" in shown.stdout
    assert usage.returncode == 2


def installed_package(folder: Path) -> Path:
    """``clients/js`` packed and installed into a project of its own, as a user would."""
    subprocess.run(
        ["npm", "pack", "--silent", "--pack-destination", str(folder)],
        cwd=JS,
        check=True,
        capture_output=True,
    )
    (folder / "package.json").write_text('{"name": "app", "private": true, "type": "module"}')
    tarball = next(folder.glob("mmms-client-*.tgz"))
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--offline", str(tarball)],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return folder / "node_modules" / "mmms-client" / "index.js"


def node_test(stack: Stack, folder: Path, test_file: str, **env: str) -> None:
    if not (JS / "node_modules" / "playwright-core").is_dir():
        pytest.skip("clients/js has no node_modules: `make test` runs npm ci")
    environment = os.environ | {
        "MMMS_URL": stack.base,
        "MMMS_ADMIN_TOKEN": admin_token(stack),
        "MMMS_CLIENT_MODULE": str(installed_package(folder)),
        **env,
    }
    run = subprocess.run(
        ["node", "--test", "--test-reporter=spec", test_file],
        cwd=JS,
        env=environment,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_js_client_in_node(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    uploads = create_uploads(moto, BUCKET)
    node_test(stack, tmp_path, "test/e2e/node.test.js")
    # What the Node test uploaded, streamed with its Content-Length, is what S3 stored.
    stored = uploads.s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert len(stored) == 1
    body = uploads.s3.get_object(Bucket=BUCKET, Key=stored[0]["Key"])["Body"].read()
    assert (
        body == ("mail,name\n" + "".join(f"n{i}@example.org,N {i}\n" for i in range(4000))).encode()
    )


def test_js_client_in_a_real_browser(stack: Stack, tmp_path: Path) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium (apt-get install -y chromium): the browser tests did not run")
    node_test(stack, tmp_path, "test/browser/browser.test.js", MMMS_CHROMIUM=browser)
