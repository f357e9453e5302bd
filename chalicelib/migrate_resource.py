"""Migrations as part of the deploy: the handler of the template's ``Custom::DatabaseMigrations``.

The packaged template has a ``MigrateDatabase`` function (same code, same database secret,
same subnets as the others) and a custom resource that CloudFormation creates and updates
with it, before any other function is created or updated (they depend on it). On ``Create``
and ``Update`` the handler applies the pending migrations (:func:`chalicelib.migrate.
apply_migrations`: idempotent, serialised by an advisory lock) and answers ``SUCCESS``; on any
error it answers ``FAILED`` with the reason, so the stack fails and rolls back to the code
that matches the schema. ``Delete`` (stack deleted, or the resource replaced) changes nothing:
the database is the user's.

CloudFormation waits for the answer, an HTTP PUT of a JSON document to the event's
presigned ``ResponseURL`` (the documented custom-resource protocol); without one the stack
would hang for an hour, so every path answers.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests

from chalicelib.migrate import apply_migrations

log = logging.getLogger("mmms.migrate")

PHYSICAL_ID = "mmms-database-migrations"
# CloudFormation shows the reason in the stack events; its documented limit is 4 KB.
_MAX_REASON = 1000


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Apply migrations for ``Create``/``Update``; answer CloudFormation in every case."""
    from chalicelib.config import load_settings
    from chalicelib.credentials import resolve_conninfo
    from chalicelib.logs import configure_logging

    status, reason, data = "SUCCESS", "", {}
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        if event["RequestType"] in ("Create", "Update"):
            applied = apply_migrations(resolve_conninfo(settings))
            data = {"Applied": ",".join(applied) or "none"}
            log.info("migrations up to date", extra={"applied": applied})
    except Exception as exc:  # every failure is the deploy's failure, answered below
        log.exception("migrations failed")
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"[:_MAX_REASON]
    answer = {
        "Status": status,
        "Reason": reason or "See the MigrateDatabase function's log",
        "PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID),
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": data,
    }
    body = json.dumps(answer).encode("utf-8")
    # The presigned URL is signed without a Content-Type: sending one would break it.
    response = requests.put(
        event["ResponseURL"],
        data=body,
        headers={"Content-Type": "", "Content-Length": str(len(body))},
        timeout=30,
    )
    response.raise_for_status()
    return answer
