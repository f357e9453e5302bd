"""Everything the benchmark runs against, set up and torn down in one ``with`` block.

A fresh PostgreSQL schema (migrated, dropped at the end), moto's SQS server over HTTP, the
real Chalice app in-process, and one API key created through the admin route. Reuses the
test helpers in ``tests/support``: the benchmark is dev tooling like the tests.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalice.test import Client

from bench.doubles import LatencyProvider, MemoryProcessingQueue, MemoryResultQueue
from chalicelib.bootstrap import Container, build_container, use_container
from chalicelib.migrate import apply_migrations
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.support.database import isolated_schema, postgres_server
from tests.support.moto_server import MotoServer, running_moto_server
from tests.support.queues import Queues, create_queues

SENDER = "support@example.com"
ORIGIN = "https://app.example.com"


@dataclass
class BenchEnvironment:
    database_url: str
    moto: MotoServer
    queues: Queues
    client: Client
    provider: LatencyProvider
    results: MemoryResultQueue = field(default_factory=MemoryResultQueue)
    memory_queue: MemoryProcessingQueue = field(default_factory=MemoryProcessingQueue)
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    api_key: str = ""
    key_id: uuid.UUID = field(default_factory=uuid.uuid4)
    _built: list[Container] = field(default_factory=list)

    def use(self, *, sqs: bool) -> Container:
        """Build a container (SQS on moto, or the in-memory queue) and install it for the app.

        The provider and the result queue are always the in-memory ones; log level WARNING
        keeps the per-request access lines off the benchmark's output.
        """
        settings = make_settings(
            self.database_url,
            mail_queue_url=self.queues.processing,
            mail_result_queue_url=self.queues.result,
            aws_endpoint_url=self.moto.endpoint_url,
            aws_region=self.moto.region,
            log_level="WARNING",
            **self.settings_overrides,
        )
        container = build_container(
            settings,
            sender=self.provider,
            processing_queue=None if sqs else self.memory_queue,
            result_queue=self.results,
        )
        use_container(container)
        self._built.append(container)
        return container

    def post_mail(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = {"x-api-key": self.api_key, "Origin": ORIGIN, "Content-Type": "application/json"}
        raw = self.client.http.post("/v1/mail", headers=headers, body=json.dumps(body))
        return raw.status_code, json.loads(raw.body)

    def close(self) -> None:
        use_container(None)
        for container in self._built:
            container.close()


def _create_key(client: Client) -> tuple[str, uuid.UUID]:
    raw = client.http.post(
        "/v1/api-key",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        body=json.dumps({"name": "bench key", "origin_names": ["app.example.com"]}),
    )
    if raw.status_code != 200:
        raise RuntimeError(f"could not create an API key: {raw.status_code} {raw.body!r}")
    data = json.loads(raw.body)["data"]
    return data["api_key"], uuid.UUID(data["key_id"])


@contextmanager
def bench_environment(
    latency_seconds: float, settings_overrides: dict[str, Any] | None = None
) -> Iterator[BenchEnvironment]:
    """Start PostgreSQL schema, moto and the app; yield them; remove everything afterwards."""
    from mmms_local import gateway

    gateway.install()
    import app

    # moto's server logs every HTTP call it answers (1,000 per 10,000 recipients).
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    with ExitStack() as stack:
        server = stack.enter_context(postgres_server())
        database_url = stack.enter_context(isolated_schema(server))
        apply_migrations(database_url)
        moto = stack.enter_context(running_moto_server())
        queues = create_queues(moto)
        client = stack.enter_context(Client(app.app))
        env = BenchEnvironment(
            database_url=database_url,
            moto=moto,
            queues=queues,
            client=client,
            provider=LatencyProvider(latency_seconds),
            settings_overrides=settings_overrides or {},
        )
        stack.callback(env.close)
        env.use(sqs=False)
        env.api_key, env.key_id = _create_key(client)
        yield env
