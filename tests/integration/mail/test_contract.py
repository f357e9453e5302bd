"""The OpenAPI document is a contract: schemathesis holds the running app to it.

The app is served over real HTTP (Chalice's local server on a free port, the test's own
PostgreSQL schema, SQS on moto) and schemathesis runs every phase (examples, coverage,
fuzzing, stateful through the document's links) with every check, as the admin and as an
API key with its Origin. Any answer outside the document fails the test. The run is
bounded (``CONTRACT_EXAMPLES`` per operation, fixed seed) to keep ``make test`` short.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from chalice.test import Client

from tests.conftest import ADMIN_TOKEN
from tests.integration.mail.conftest import ORIGIN, Wire
from tests.support.campaigns import create_uploads
from tests.support.captcha_verifier import SECRET, running_verifier
from tests.support.fake_providers import FakeProvider
from tests.support.http import create_key
from tests.support.local_server import serving
from tests.support.moto_server import MotoServer

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "20"))
SEED = os.environ.get("CONTRACT_SEED", "1")


def test_the_app_answers_within_its_openapi_document(
    wire: Wire, api: Client, moto: MotoServer
) -> None:
    with running_verifier() as verifier:
        wire(
            sender=FakeProvider("fake"),
            rate_limit_per_minute=0,
            mailgun_webhook_signing_key="contract-mailgun-signing-key",
            # Keys may require a CAPTCHA only when a provider is configured (else a 422).
            captcha_provider="turnstile",
            captcha_secret=SECRET,
            captcha_verify_url=verifier.url,
            campaign_bucket=create_uploads(moto).bucket,
        )
        # A browser key whose per-IP limit and quota the run cannot reach (their 429s are
        # tested on their own): every generated send reaches the sending code.
        api_key = create_key(
            api,
            ["app.example.com"],
            policy={"per_ip_per_minute": 10**9, "daily_recipient_quota": 10**9},
        )["api_key"]
        run = _schemathesis(api_key)
    if os.environ.get("CONTRACT_OUTPUT"):  # the whole report, for reading it
        Path(os.environ["CONTRACT_OUTPUT"]).write_text(run.stdout, encoding="utf-8")
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary  # schemathesis exits non-zero on any failure
    stateful = stateful_counts(run.stdout)
    assert stateful.scenarios >= 1, summary  # the stateful phase ran, not skipped
    assert stateful.links_covered >= 1, summary  # and followed links
    # Schemathesis infers links of its own too: every one the routes declare must be in the
    # document it ran.
    assert stateful.links_total - stateful.links_inferred == document_links(), summary


def _schemathesis(api_key: str) -> subprocess.CompletedProcess[str]:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    with serving() as url:
        return subprocess.run(
            [
                str(schemathesis),
                "run",
                f"{url}/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {ADMIN_TOKEN}",
                "--header",
                f"x-api-key: {api_key}",
                "--header",
                f"Origin: {ORIGIN}",
                "--checks",
                "all",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                SEED,
                "--generation-allow-x00",
                "false",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=ROOT,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
                "PYTHONPATH": str(ROOT),
            },
        )


@dataclass(frozen=True)
class StatefulCounts:
    scenarios: int
    links_covered: int
    links_total: int
    links_inferred: int


def stateful_counts(output: str) -> StatefulCounts:
    """The stateful phase's counts, from its section of schemathesis's output.

    A skipped phase prints its name too, but no counts::

         ✅  Stateful (in 8.31s)

             Scenarios:    27
             API Links:    4 covered / 8 selected / 8 total (2 inferred)
    """
    section = re.search(
        r"Stateful \(in [^)]*\)\s+Scenarios:\s+(\d+)\s+"
        r"API Links:\s+(\d+) covered / \d+ selected / (\d+) total(?: \((\d+) inferred\))?",
        output,
    )
    assert section is not None, output[-6000:]
    return StatefulCounts(
        scenarios=int(section[1]),
        links_covered=int(section[2]),
        links_total=int(section[3]),
        links_inferred=int(section[4] or 0),
    )


def document_links() -> int:
    """How many links the routes declare (counted on the route table, not on the document)."""
    import app

    return sum(len(links) for spec in app.router.specs for links in spec.links.values())
