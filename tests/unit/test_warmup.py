"""The scheduled warm-up event is answered without touching the database, providers or AWS,
and under SnapStart the init phase primes the modules the first request needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import bootstrap
from chalicelib.bootstrap import use_container
from chalicelib.http.warmup import PRIMED_MODULES, is_warm_up
from mmms_local import gateway

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """No settings at all: building the container (settings, database, AWS) would raise."""
    for name in list(os.environ):
        if name.startswith(("DATABASE_", "SECRET_", "ADMIN_", "MAIL_", "AWS_")):
            monkeypatch.delenv(name)
    use_container(None)


@pytest.mark.parametrize(
    "event",
    [
        {"source": "mmms.warmup"},
        {"source": "serverless-plugin-warmup"},
        {"source": "mmms.warmup", "detail-type": "Scheduled Event", "detail": {}},
    ],
)
def test_a_warm_up_event_is_answered_with_no_work(no_configuration: None, event: dict) -> None:
    gateway.install()
    import app

    assert app.app(dict(event), None) == {"warm": True}
    assert bootstrap._container is None  # nothing was built: no settings, pool or client


def test_an_http_request_is_never_taken_for_a_warm_up() -> None:
    assert not is_warm_up({"source": "mmms.warmup", "requestContext": {}, "path": "/v1/health"})
    assert not is_warm_up({"source": "aws.events"})
    assert not is_warm_up([{"source": "mmms.warmup"}])


@pytest.mark.parametrize("initialization", ["snap-start", "on-demand"])
def test_snapstart_init_primes_imports_and_builds_nothing(initialization: str) -> None:
    child = (
        "import json, sys\n"
        "import app\n"
        "import chalicelib.bootstrap as b\n"
        "print(json.dumps({'modules': sorted(m for m in sys.modules), "
        "'built': b._container is not None}))\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "SECRET_", "ADMIN_", "MAIL_"))
    }
    env["AWS_LAMBDA_INITIALIZATION_TYPE"] = initialization
    out = subprocess.run(
        [sys.executable, "-c", child],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["built"] is False
    primed = set(PRIMED_MODULES) <= set(result["modules"])
    assert primed is (initialization == "snap-start")
