"""Helpers for talking to the app through Chalice's test client."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client

from tests.conftest import ADMIN_TOKEN

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}


class Answer:
    """A response with its JSON body parsed."""

    def __init__(self, raw: Any) -> None:
        self.status = raw.status_code
        self.headers = {k.lower(): v for k, v in raw.headers.items()}
        self.text = raw.body.decode("utf-8") if raw.body else ""
        self.json: Any = json.loads(self.text) if self.text else None


def call(
    client: Client,
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    payload = raw_body if raw_body is not None else (json.dumps(body) if body is not None else "")
    return Answer(client.http.request(method, path, headers=headers or {}, body=payload))


def create_key(client: Client, origins: list[str], **extra: Any) -> dict[str, Any]:
    answer = call(
        client,
        "POST",
        "/v1/api-key",
        body={"name": "test key", "origin_names": origins, **extra},
        headers=ADMIN_HEADERS,
    )
    assert answer.status == 200, answer.json
    data: dict[str, Any] = answer.json["data"]
    return data
