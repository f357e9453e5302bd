"""boto3 clients, made on first use and shared by the process (never at import time).

boto3 is imported inside :meth:`AwsClients.client`: a request that touches no AWS service
never pays for importing it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


class AwsClients:
    """boto3 clients, created on first use and shared by the process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                import boto3
                from botocore.config import Config

                self._clients[service] = boto3.client(
                    service,  # type: ignore[call-overload]
                    region_name=self._settings.region,
                    endpoint_url=self._settings.aws_endpoint_url,
                    config=Config(
                        connect_timeout=3,
                        read_timeout=10,
                        # A retried SendEmail may deliver twice: SES sends get one attempt,
                        # the provider chain and the queue decide what happens next.
                        retries={
                            "mode": "standard",
                            "total_max_attempts": 1 if service == "sesv2" else 3,
                        },
                        max_pool_connections=max(10, self._settings.consumer_concurrency),
                    ),
                )
            return self._clients[service]

    def secretsmanager(self) -> SecretsManagerClient:
        client: SecretsManagerClient = self.client("secretsmanager")
        return client

    def sqs(self) -> SQSClient:
        client: SQSClient = self.client("sqs")
        return client
