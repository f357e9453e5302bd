"""The API function's cold start: ``import app``, then the first request, in fresh processes.

    .venv/bin/python -m bench.bench_cold_start [runs]

Each run is a new Python process, as a new Lambda instance is: it imports ``app`` (the init
phase) and then answers ``POST /v1/api-key`` given as an API Gateway REST API event (the
first request: settings, the database secret read from Secrets Manager, the pool's first
connection, one insert), then the same request again (warm). Three ways of starting:

- ``plain``: as the function starts without SnapStart (import, then the first request);
- ``primed``: ``chalicelib.http.warmup.prime()`` runs during init, as it does under SnapStart
  before the snapshot; the figure that remains after a restore is the first request's;
- ``warm-up``: a warm-up event first (the scheduled ping), then the first request.

The database is a database of its own on the local PostgreSQL (dropped at the end), Secrets
Manager is moto's server over HTTP. Figures are medians in milliseconds; the child lists the
modules the first request imported, which is where ``PRIMED_MODULES`` comes from.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chalicelib.migrate import apply_migrations
from tests.conftest import ADMIN_TOKEN
from tests.support.database import postgres_server
from tests.support.moto_server import running_moto_server

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, os, sys, time
mode = sys.argv[1]
started = time.perf_counter()
if mode == "primed":
    os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
import app
imported = time.perf_counter()
from tests.support.apigw import invoke, rest_api_event
headers = {"Authorization": "Bearer " + os.environ["ADMIN_TOKEN"],
           "Content-Type": "application/json"}
body = {"name": "cold start", "origin_names": ["app.example.com"]}
warmed = imported
if mode == "warm-up":
    assert app.app({"source": "mmms.warmup"}, None) == {"warm": True}
    warmed = time.perf_counter()
before = set(sys.modules)
answer = invoke(app.app, rest_api_event("POST", "/v1/api-key", "/v1/api-key",
                                        headers=headers, body=body))
first = time.perf_counter()
assert answer.status == 200, answer.json
answer = invoke(app.app, rest_api_event("POST", "/v1/api-key", "/v1/api-key",
                                        headers=headers, body=body))
second = time.perf_counter()
lazy = sorted({m.split(".")[0] + ("." + m.split(".")[1] if "." in m else "")
               for m in set(sys.modules) - before})
print(json.dumps({
    "import_ms": (imported - started) * 1000,
    "warm_up_ms": (warmed - imported) * 1000,
    "first_request_ms": (first - warmed) * 1000,
    "second_request_ms": (second - first) * 1000,
    "lazy_modules": lazy,
}))
"""


def _database(server: str) -> tuple[str, str]:
    name = f"mmms_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server)
    params["dbname"] = name
    return name, make_conninfo(**{k: str(v) for k, v in params.items()})


def _drop(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def run(runs: int) -> dict[str, dict[str, float]]:
    with postgres_server() as server, running_moto_server() as moto:
        name, url = _database(server)
        try:
            apply_migrations(url)
            params = conninfo_to_dict(url)
            secrets = boto3.client(
                "secretsmanager", endpoint_url=moto.endpoint_url, region_name=moto.region
            )
            secrets.create_secret(
                Name="bench/postgresql",
                SecretString=json.dumps(
                    {
                        "host": params.get("host", "127.0.0.1"),
                        "port": int(params.get("port", 5432)),
                        "username": params.get("user", "postgres"),
                        "password": params.get("password", "unused"),
                        "dbname": name,
                    }
                ),
            )
            env = {
                **os.environ,
                "SECRET_NAME": "bench/postgresql",
                "ADMIN_TOKEN": ADMIN_TOKEN,
                "AWS_ENDPOINT_URL": moto.endpoint_url,
                "AWS_REGION": moto.region,
                "MAIL_QUEUE_URL": f"{moto.endpoint_url}/123456789012/unused",
                "MAIL_RESULT_QUEUE_URL": f"{moto.endpoint_url}/123456789012/unused-results",
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
            env.pop("DATABASE_URL", None)
            figures: dict[str, list[dict[str, float]]] = {}
            lazy: list[str] = []
            for _ in range(runs):
                for mode in ("plain", "primed", "warm-up"):
                    out = (
                        subprocess.run(
                            [sys.executable, "-c", CHILD, mode],
                            env=env,
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            check=True,
                            timeout=120,
                        )
                        .stdout.strip()
                        .splitlines()[-1]
                    )
                    result = json.loads(out)
                    if mode == "plain":
                        lazy = result.pop("lazy_modules")
                    else:
                        result.pop("lazy_modules")
                    figures.setdefault(mode, []).append(result)
        finally:
            _drop(server, name)
    summary = {
        mode: {key: round(statistics.median(r[key] for r in rows), 1) for key in rows[0]}
        for mode, rows in figures.items()
    }
    print(json.dumps({"runs": runs, "medians_ms": summary}, indent=2))
    print("modules the first request imported (plain):", ", ".join(lazy))
    return summary


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
