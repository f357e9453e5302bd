"""Cold-start care for the API function: priming, and a warm-up event answered without work.

A cold start pays for ``import app`` and then for what the first request imports on its way
(boto3 and botocore for the secrets and queues, psycopg's pool, the providers' modules): the
container is built on first use, so nothing connects at import time. :func:`prime` imports
those modules and nothing more: no client, no connection, no secret read.

- With Lambda SnapStart (the packaged template publishes the API function with
  ``SnapStart: {ApplyOn: PublishedVersions}``), ``app.py`` primes during the init phase, so
  the snapshot holds the imported modules and a restored instance starts with them loaded.
  Nothing that must differ per instance is made before the snapshot: connections, clients
  and random tokens (``secrets``, ``uuid4``: the OS's randomness) all come after the restore.
- A scheduled EventBridge rule invokes the function every few minutes with
  ``{"source": "mmms.warmup"}`` (the seed's toolkit knows ``serverless-plugin-warmup`` too):
  :class:`WarmableChalice` answers it by priming, before Chalice would try to read it as an
  HTTP request, and touches neither the database nor a provider nor AWS.
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any

from chalice.app import Chalice

log = logging.getLogger("mmms.warmup")

WARM_UP_SOURCES = frozenset({"mmms.warmup", "serverless-plugin-warmup"})
# What a first request imports that ``import app`` does not (measured: bench/bench_cold_start).
PRIMED_MODULES = (
    "boto3",
    "boto3.session",
    "botocore.client",
    "botocore.config",
    "botocore.credentials",
    "botocore.endpoint",
    "botocore.endpoint_provider",
    "botocore.handlers",
    "botocore.httpsession",
    "botocore.parsers",
    "botocore.regions",
    "botocore.retries.standard",
    "botocore.serialize",
    "s3transfer.manager",
    "psycopg_pool",
    "email.policy",
)


def is_warm_up(event: Any) -> bool:
    """A warm-up ping: a plain event with a warm-up ``source`` and no HTTP request in it."""
    return (
        isinstance(event, dict)
        and "requestContext" not in event
        and event.get("source") in WARM_UP_SOURCES
    )


def prime() -> float:
    """Import what the first request would import; return the seconds it took."""
    started = time.perf_counter()
    for module in PRIMED_MODULES:
        importlib.import_module(module)
    return time.perf_counter() - started


class WarmableChalice(Chalice):
    """The Chalice app, answering warm-up events itself (they are not HTTP requests)."""

    def __call__(self, event: Any, context: Any) -> Any:
        if is_warm_up(event):
            seconds = prime()
            log.info("warm-up", extra={"event": "warm_up", "prime_ms": round(seconds * 1000, 2)})
            return {"warm": True}
        return super().__call__(event, context)
