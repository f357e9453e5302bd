"""Requests as API Gateway's REST API hands them to Lambda (proxy integration, payload 1.0),
and raw HTTP to Chalice's local server with the path exactly as written.

API Gateway's REST API does not decode path parameters: ``GET /v1/suppressions/a%2Bb%40x.org``
arrives with ``pathParameters: {"address": "a%2Bb%40x.org"}`` and ``path`` as requested; the
query string is decoded (:func:`query_parameters`). :func:`rest_api_event` builds that event,
and :func:`invoke` runs the app on it the way the Lambda runtime does (``app(event, context)``).
"""

from __future__ import annotations

import http.client
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

STAGE = "v1"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    json: Any


def rest_api_event(
    method: str,
    resource: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    source_ip: str = "203.0.113.7",
) -> dict[str, Any]:
    """The event of ``method path`` (``path`` percent-encoded, as sent, with its query string if
    any) on route ``resource``, from ``source_ip`` (what API Gateway says of the caller)."""
    path, _, query_string = path.partition("?")
    query = query_parameters(query_string)
    names = re.findall(r"{(\w+)\+?}", resource)
    pieces = re.split(r"{\w+\+?}", resource)
    pattern = "^" + "([^/]+)".join(re.escape(piece) for piece in pieces) + "$"
    match = re.match(pattern, path)
    assert match is not None, (resource, path)
    raw_headers = {"Host": "abc123.execute-api.eu-central-1.amazonaws.com", **(headers or {})}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": raw_headers,
        "multiValueHeaders": {k: [v] for k, v in raw_headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": dict(zip(names, match.groups(), strict=True)) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": uuid.uuid4().hex,
            "requestTime": "01/Dec/2025:14:00:00 +0000",
            "path": f"/{STAGE}{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": "abc123",
            "requestTimeEpoch": 1764597600000,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": "tests"},
            "domainName": "abc123.execute-api.eu-central-1.amazonaws.com",
            "apiId": "abc123",
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def query_parameters(query_string: str) -> dict[str, list[str]]:
    """A query string as API Gateway's REST API hands it to Lambda: names and values decoded
    once, ``+`` read as a space (HTML form encoding; ``%2B`` is the plus sign), every value of a
    repeated name kept in ``multiValueQueryStringParameters`` and the last one in
    ``queryStringParameters``.

    Not observable here; from an event API Gateway logged (aws/aws-cdk#19827: ``?sort=-+createdAt``
    arrived as ``"sort": "- createdAt"`` in both maps) and from LocalStack's REST API emulation,
    whose parser keeps the last value "as AWS does" and form-decodes with werkzeug. Chalice's
    local server reads a query string the same way (``urllib.parse.parse_qs``).
    """
    decoded: dict[str, list[str]] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        decoded.setdefault(name, []).append(value)
    return decoded


class LambdaContext:
    function_name = "mmms-production-APIHandler"
    memory_limit_in_mb = 1024
    aws_request_id = "tests"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def invoke(app: Any, event: dict[str, Any]) -> Answer:
    """Run ``app`` on ``event`` as the Lambda runtime does; the proxy response, parsed."""
    response = app(event, LambdaContext())
    body = response.get("body")
    return Answer(
        status=response["statusCode"],
        headers={k.lower(): v for k, v in response.get("headers", {}).items()},
        json=json.loads(body) if body else None,
    )


def raw_request(
    base_url: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    source_address: str | None = None,
) -> Answer:
    """``method path`` to the local server with ``path`` sent byte for byte (HTTP clients
    rewrite malformed escapes such as ``%ZZ``; this one does not), from ``source_address``
    (any 127.x.y.z reaches a server on 127.0.0.1)."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(
        host,
        int(port),
        timeout=30,
        source_address=(source_address, 0) if source_address else None,
    )
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {**(headers or {})}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8")
        return Answer(
            status=response.status,
            headers={k.lower(): v for k, v in response.getheaders()},
            json=json.loads(text) if text else None,
        )
    finally:
        connection.close()
