"""What a key's policy costs a single send (SPEC 12): p50 of ``POST /v1/mail`` (one recipient,
a stored template, a provider that answers at once) for three keys, interleaved in one run:

- a server key with no policy (no quota, no per-IP count, no checks to speak of);
- a browser key with the deployment's defaults (a daily quota and a per-IP limit, counted);
- a tight browser key: allowed senders, recipient domains, template-only, the template on its
  list, a recipients cap, a quota and a per-IP limit.

Also the time to refuse a hostile template when it is saved.

    .venv/bin/python -m bench.bench_policy [--sends 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from bench.environment import ORIGIN, SENDER, bench_environment
from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
HIGH = 10**9  # limits the run never reaches: every request goes through the counting


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=300, help="sends per key")
    args = parser.parse_args()
    with bench_environment(0.0, {"rate_limit_per_minute": 0}) as env:
        client = env.client

        def admin(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            raw = client.http.request(method, path, headers=ADMIN, body=json.dumps(body))
            data: dict[str, Any] = json.loads(raw.body)["data"]
            return data

        template = admin(
            "POST",
            "/v1/templates",
            {"name": "bench", "subject": "Hi {{name}}", "html": "<p>Code {{code}}</p>"},
        )["template_id"]
        keys = {
            "server key, no policy": (
                admin("POST", "/v1/api-key", {"name": "s", "kind": "server"})["api_key"],
                {},
            ),
            "browser key, defaults": (
                admin(
                    "POST",
                    "/v1/api-key",
                    {
                        "name": "b",
                        "origin_names": ["app.example.com"],
                        "policy": {"daily_recipient_quota": HIGH, "per_ip_per_minute": HIGH},
                    },
                )["api_key"],
                {"Origin": ORIGIN},
            ),
            "browser key, tight policy": (
                admin(
                    "POST",
                    "/v1/api-key",
                    {
                        "name": "t",
                        "origin_names": ["app.example.com"],
                        "policy": {
                            "allowed_senders": [SENDER, "@example.net"],
                            "allowed_recipient_domains": ["example.org", "*.example.org"],
                            "inline_templates": False,
                            "template_ids": [template],
                            "max_recipients_per_request": 1,
                            "daily_recipient_quota": HIGH,
                            "per_ip_per_minute": HIGH,
                        },
                    },
                )["api_key"],
                {"Origin": ORIGIN},
            ),
        }
        timings: dict[str, list[float]] = {name: [] for name in keys}
        for index in range(args.sends):
            for name, (key, headers) in keys.items():
                body = {
                    "email_id": f"{name}-{index}",
                    "template_id": template,
                    "params": {"code": str(index)},
                    "sender_email": SENDER,
                    "recipients": [{"name": "Ann", "mail": f"ann{index}@example.org"}],
                }
                started = time.perf_counter()
                raw = client.http.post(
                    "/v1/mail",
                    headers={"x-api-key": key, "Content-Type": "application/json", **headers},
                    body=json.dumps(body),
                )
                timings[name].append(time.perf_counter() - started)
                if raw.status_code != 200:
                    raise RuntimeError(f"{name}: {raw.status_code} {raw.body!r}")
        base = statistics.median(timings["server key, no policy"])
        print(f"single send, {args.sends} each, interleaved (p50, p90):")
        for name, values in timings.items():
            p50 = statistics.median(values)
            p90 = statistics.quantiles(values, n=10)[-1]
            print(
                f"  {name:26} p50 {p50 * 1000:6.2f} ms  p90 {p90 * 1000:6.2f} ms"
                f"  (+{(p50 - base) * 1000:.2f} ms)"
            )
        hostile = {
            "name": "evil",
            "subject": "s",
            "html": "{% for i in range(10**8) %}x{% endfor %}",
        }
        started = time.perf_counter()
        raw = client.http.post("/v1/templates", headers=ADMIN, body=json.dumps(hostile))
        took = time.perf_counter() - started
        print(f"hostile template refused at save: {raw.status_code} in {took * 1000:.1f} ms")


if __name__ == "__main__":
    main()
