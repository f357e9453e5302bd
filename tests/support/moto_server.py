"""moto in server mode: a real HTTP endpoint that boto3 talks to, in a thread of the test run.

Tests read what AWS "received" from moto's backends (same process), and reset them over
HTTP between tests. boto3 calls are never patched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from moto.server import ThreadedMotoServer

ACCOUNT_ID = "123456789012"
REGION = "eu-central-1"


@dataclass(frozen=True)
class MotoServer:
    endpoint_url: str
    region: str = REGION

    def reset(self) -> None:
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def ses_sent_messages(self) -> list[Any]:
        """Every message SES (v1 or v2) accepted since the last reset, oldest first."""
        from moto.ses.models import ses_backends

        return list(ses_backends[ACCOUNT_ID][self.region].sent_messages)

    def verify_ses_identity(self, identity: str) -> None:
        import boto3

        boto3.client(
            "sesv2", endpoint_url=self.endpoint_url, region_name=self.region
        ).create_email_identity(EmailIdentity=identity)


@contextmanager
def running_moto_server() -> Iterator[MotoServer]:
    """Start moto on a free loopback port with fake credentials; stop it afterwards."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()
