"""Liveness and readiness."""

from __future__ import annotations

import json

from chalice.app import Response

from chalicelib.bootstrap import Container
from chalicelib.http.responses import JSON_HEADERS, success


def health() -> Response:
    """Liveness: the seed's bare ``"OK"``; touches nothing else."""
    return Response(body=json.dumps("OK"), status_code=200, headers=dict(JSON_HEADERS))


def readiness(services: Container) -> Response:
    """200 when the database answers; DatabaseUnavailableError (503) otherwise."""
    services.database.ping()
    return success("Ready", {"database": "ok"})
