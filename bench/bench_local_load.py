"""``make run`` under load: concurrent clients for a while, each request a new connection.

Starts the local stack (``python -m mmms_local.run``, embedded defaults, in a temporary
home), creates a key, and has ``--clients`` threads post one-recipient emails for
``--seconds``. Reports requests/s, latency percentiles, statuses and connection errors, then
checks that every 200 matches exactly one captured ``.eml`` (its message id is the capture
id). The per-key rate limit is turned off: this measures the server, not the limiter.

    .venv/bin/python -m bench.bench_local_load --clients 50 --seconds 30
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

ORIGIN = "http://localhost:4321"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_up(base: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the local stack exited")
        try:
            if requests.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.3)
    raise SystemExit("the local stack did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mmms-load-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MMMS_HOME": str(home), "PORT": str(port), "LOG_LEVEL": "WARNING"}
    env["RATE_LIMIT_PER_MINUTE"] = "0"
    env.pop("DATABASE_URL", None)
    log = (home / "run.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mmms_local.run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until_up(base, process)
        token = (home / "admin_token").read_text().strip()
        key = requests.post(
            f"{base}/v1/api-key",
            json={"name": "load", "origin_names": ["localhost:4321"]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()["data"]["api_key"]
        run(base, key, home, args.clients, args.seconds)
    finally:
        process.terminate()
        process.wait(timeout=60)


def run(base: str, key: str, home: Path, clients: int, seconds: float) -> None:
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    message_ids: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    headers = {"x-api-key": key, "Origin": ORIGIN}

    def client(number: int) -> None:
        sequence = 0
        while time.monotonic() < stop:
            sequence += 1
            body = {
                "email_id": f"load-{number}-{sequence}",
                "sender_email": "load@example.com",
                "subject": "Load {{name}}",
                "html_template": "<p>Hello {{name}}</p>",
                "recipients": [{"name": f"C{number}", "mail": f"c{number}@example.org"}],
            }
            started = time.perf_counter()
            try:
                # No session: every request is a new connection, as many clients would be.
                answer = requests.post(f"{base}/v1/mail", json=body, headers=headers, timeout=30)
            except requests.RequestException as err:
                with lock:
                    statuses[f"error: {type(err).__name__}"] += 1
                continue
            took = time.perf_counter() - started
            with lock:
                statuses[str(answer.status_code)] += 1
                latencies.append(took)
                if answer.status_code == 200:
                    message_ids.append(answer.json()["data"]["message_id"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    captured = {path.stem for path in (home / "outbox").glob("*.eml")}
    errors = sum(count for status, count in statuses.items() if status.startswith("error"))
    ordered = sorted(latencies)
    total = sum(statuses.values())
    print(f"{clients} clients, {elapsed:.1f} s: {total} requests, {total / elapsed:.1f} requests/s")
    print(f"statuses: {dict(statuses)}; connection errors: {errors}")
    print(
        f"latency p50 {1000 * statistics.median(ordered):.0f} ms,"
        f" p99 {1000 * ordered[int(len(ordered) * 0.99) - 1]:.0f} ms,"
        f" max {1000 * ordered[-1]:.0f} ms"
    )
    matched = len(set(message_ids) & captured)
    print(
        f"200s: {len(message_ids)}, distinct message ids: {len(set(message_ids))},"
        f" captured .eml files: {len(captured)}, 200s matching a file: {matched}"
    )


if __name__ == "__main__":
    main()
