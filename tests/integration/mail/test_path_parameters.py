"""Path parameters are decoded exactly once (SPEC 15), behind API Gateway and locally.

Ids and addresses a browser's ``encodeURIComponent`` changes are posted, then looked up with
their encoded form: through Chalice's local server over real HTTP (what ``make run`` serves)
and as API Gateway REST API proxy events handed to the app as Lambda does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from chalice.test import Client

from tests.integration.mail.conftest import ORIGIN, Wire, seed_request
from tests.support.apigw import Answer, invoke, raw_request, rest_api_event
from tests.support.fake_providers import FakeProvider
from tests.support.http import ADMIN_HEADERS, call
from tests.support.local_server import serving

# Each id is also its recipient's emailRecipientId. "100%25" and "a%2Fb" are literal: a
# second decoding would turn them into "100%" and "a/b".
IDS = [
    "with space",
    "a/b",
    "a+b",
    "who@example.org",
    "100%",
    "#1",
    "ünïcødé ✉ 邮件",
    "?x=1&y=2",
    "100%25",
    "a%2Fb",
    "..",
]
ADDRESSES = ["a+b@x.org", "o'hara/ops%1#x@example.org", "UPPER+Case@Example.org"]

Send = Callable[[str, str, str, dict[str, str], Any], Answer]


def encode(value: str) -> str:
    """``encodeURIComponent`` (which also leaves ``!'()*`` alone; quoting them is as valid)."""
    return quote(value, safe="")


@pytest.fixture
def over_http(wire: Wire, api: Client) -> Iterator[Send]:
    wire(sender=FakeProvider("fake"))
    with serving() as url:

        def send(method: str, _resource: str, path: str, headers: dict[str, str], body: Any):
            return raw_request(url, method, path, headers=headers, body=body)

        yield send


@pytest.fixture
def as_lambda(wire: Wire, api: Client) -> Send:
    wire(sender=FakeProvider("fake"))
    import app

    def send(method: str, resource: str, path: str, headers: dict[str, str], body: Any):
        event = rest_api_event(method, resource, path, headers=headers, body=body)
        return invoke(app.app, event)

    return send


@pytest.fixture(params=["local_server", "api_gateway_event"])
def send(request: pytest.FixtureRequest) -> Send:
    fixture = "over_http" if request.param == "local_server" else "as_lambda"
    sender: Send = request.getfixturevalue(fixture)
    return sender


def key_headers(api: Client) -> dict[str, str]:
    answer = call(
        api,
        "POST",
        "/v1/api-key",
        # A per-IP limit the many lookups cannot reach (the limit has tests of its own).
        body={
            "name": "paths",
            "origin_names": ["app.example.com"],
            "policy": {"per_ip_per_minute": 10**9},
        },
        headers=ADMIN_HEADERS,
    )
    return {"x-api-key": answer.json["data"]["api_key"], "Origin": ORIGIN}


@pytest.mark.parametrize("identifier", IDS)
def test_an_id_round_trips_through_send_status_and_recipient(
    send: Send, api: Client, identifier: str
) -> None:
    headers = key_headers(api)
    body = seed_request(email_id=identifier, emailRecipientId=identifier)
    body["recipients"][0]["emailRecipientId"] = identifier
    sent = send("POST", "/v1/mail", "/v1/mail", headers, body)
    assert sent.status == 200, sent.json

    email = send(
        "GET", "/v1/mail/{email_id}", f"/v1/mail/{encode(identifier)}?limit=10", headers, None
    )
    assert email.status == 200, email.json
    assert email.json["data"]["email_id"] == identifier
    (recipient,) = email.json["data"]["recipients"]
    assert recipient["email_recipient_id"] == identifier
    assert recipient["status"] == "sent"

    one = send(
        "GET",
        "/v1/mail/{email_id}/recipients/{email_recipient_id}",
        f"/v1/mail/{encode(identifier)}/recipients/{encode(identifier)}",
        headers,
        None,
    )
    assert one.status == 200, one.json
    assert one.json["data"]["email_recipient_id"] == identifier
    assert [e["type"] for e in one.json["data"]["events"]][:1] == ["queued"]


def test_decoding_twice_would_find_another_email(send: Send, api: Client) -> None:
    headers = key_headers(api)
    for identifier in ("100%", "100%25"):
        body = seed_request(email_id=identifier)
        assert send("POST", "/v1/mail", "/v1/mail", headers, body).status == 200
    resource = "/v1/mail/{email_id}"
    # "100%2525" is "100%25" decoded once, "100%" decoded twice.
    email = send("GET", resource, "/v1/mail/100%2525", headers, None)
    assert email.json["data"]["email_id"] == "100%25"
    email = send("GET", resource, "/v1/mail/100%25", headers, None)
    assert email.json["data"]["email_id"] == "100%"


def test_a_suppressed_address_is_removed_by_its_encoded_form(send: Send, api: Client) -> None:
    added = call(
        api, "POST", "/v1/suppressions", body={"addresses": ADDRESSES}, headers=ADMIN_HEADERS
    )
    assert added.status == 200, added.json
    admin = {"Authorization": ADMIN_HEADERS["Authorization"]}
    for address in ADDRESSES:
        path = f"/v1/suppressions/{encode(address)}"
        deleted = send("DELETE", "/v1/suppressions/{address}", path, admin, None)
        assert deleted.status == 200, (address, deleted.json)
        assert deleted.json["data"]["address"] == address.lower()
        again = send("DELETE", "/v1/suppressions/{address}", path, admin, None)
        assert again.status == 404
        assert again.json["message"] == f"{address} is not on the suppression list"
    listed = call(api, "GET", "/v1/suppressions", headers=ADMIN_HEADERS)
    assert listed.json["data"]["suppressions"] == []


def test_a_query_string_reads_the_same_behind_api_gateway_and_locally(
    send: Send, api: Client
) -> None:
    """Both decode a query string once, as an HTML form: ``%2B`` is a plus sign, a bare ``+`` a
    space, and the last of a repeated name counts. An address with a space is none that could
    be suppressed: a 422 that says why (``?address=a+b@x.org`` asks about "a b@x.org"), never
    a "not suppressed" for the wrong address."""
    added = call(
        api, "POST", "/v1/suppressions", body={"addresses": ADDRESSES}, headers=ADMIN_HEADERS
    )
    assert added.status == 200, added.json
    admin = {"Authorization": ADMIN_HEADERS["Authorization"]}

    def listed(query: str) -> Answer:
        return send("GET", "/v1/suppressions", f"/v1/suppressions?{query}", admin, None)

    for address in ADDRESSES:
        found = listed(f"address={encode(address)}")
        assert found.status == 200, found.json
        assert [s["address"] for s in found.json["data"]["suppressions"]] == [address.lower()]
    last = listed(f"address=nobody%40x.org&address={encode(ADDRESSES[0])}")
    assert [s["address"] for s in last.json["data"]["suppressions"]] == [ADDRESSES[0]]
    spaced = listed("address=a+b@x.org")
    assert spaced.status == 422, spaced.json
    ((detail),) = spaced.json["details"]
    assert detail["loc"] == ["address"]
    assert "send + as %2B" in detail["msg"]
    padded = listed("address=++a%2Bb%40x.org+")  # spaces around it are trimmed, as before
    assert [s["address"] for s in padded.json["data"]["suppressions"]] == [ADDRESSES[0]]


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        ("/v1/mail/%ZZ", ["email_id"]),  # not an escape
        ("/v1/mail/abc%", ["email_id"]),
        ("/v1/mail/%FF%FE", ["email_id"]),  # not UTF-8
        ("/v1/mail/a%00b", ["email_id"]),  # NUL: PostgreSQL cannot hold it
        (f"/v1/mail/{'x' * 201}", ["email_id"]),  # longer than any email_id
        ("/v1/mail/ok/recipients/%C3", ["email_recipient_id"]),
    ],
)
def test_a_parameter_that_cannot_name_anything_is_a_422(
    send: Send, api: Client, path: str, loc: list[str]
) -> None:
    headers = key_headers(api)
    resource = (
        "/v1/mail/{email_id}"
        if path.count("/") == 3
        else ("/v1/mail/{email_id}/recipients/{email_recipient_id}")
    )
    answer = send("GET", resource, path, headers, None)
    assert answer.status == 422, answer.json
    assert answer.json["error_type"] == "validation_error"
    assert [d["loc"] for d in answer.json["details"]] == [loc]


def test_a_nul_address_is_refused_before_the_database(send: Send) -> None:
    admin = {"Authorization": ADMIN_HEADERS["Authorization"]}
    answer = send(
        "DELETE", "/v1/suppressions/{address}", "/v1/suppressions/a%00@x.org", admin, None
    )
    assert answer.status == 422, answer.json


def test_an_encoded_slash_stays_in_its_segment_and_a_bare_one_does_not(
    over_http: Send, api: Client
) -> None:
    """Chalice's local server (and the greedy ``/{proxy+}`` route taught to it) routes on the
    encoded path, as API Gateway does: ``a%2Fb`` is one segment, ``a/b`` two."""
    headers = key_headers(api)
    assert over_http("POST", "/v1/mail", "/v1/mail", headers, seed_request(email_id="a/b")).status
    found = over_http("GET", "", "/v1/mail/a%2Fb", headers, None)
    assert found.status == 200, found.json
    assert found.json["data"]["email_id"] == "a/b"
    unknown = over_http("GET", "", "/v1/mail/a/b", headers, None)
    assert unknown.status == 404
    assert unknown.json["message"] == "No route for /v1/mail/a/b"
    deep = over_http("GET", "", "/v1/mail/a%2Fb/recipients/x%2Fy/more", headers, None)
    assert deep.status == 404
    assert deep.json["error_type"] == "not_found"


def _candidates(schema: dict[str, Any], location: str) -> list[Any]:
    """Values on both sides of each bound the schema states."""
    if schema.get("type") == "integer":
        return [
            schema["minimum"],
            schema["minimum"] - 1,
            schema["maximum"],
            schema["maximum"] + 1,
            "abc",
            "1.5",
        ]
    if "enum" in schema:
        return [*schema["enum"], "nope", schema["enum"][0].upper()]
    longest = schema["maxLength"]
    values = ["x", "a\x00b", "\x00", " x ", "é" * longest, "x" * (longest + 1), "   "]
    return values if location == "path" else [*values, ""]


def _allowed(schema: dict[str, Any], value: Any) -> bool:
    import jsonschema

    if schema.get("type") == "integer" and isinstance(value, str):
        return False  # a query string carries text; this text is no integer
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError:
        return False
    return True


def test_every_path_and_query_parameter_accepts_what_the_document_says(
    wire: Wire, api: Client
) -> None:
    """The document's parameter schemas are the service's: a value the schema refuses is a 422,
    a value it allows never is (GET /v1/suppressions?address= with NUL was a 422 while the
    document allowed any string)."""
    import app
    from chalicelib.openapi import build_openapi

    wire(sender=FakeProvider("fake"))
    headers = {**key_headers(api), "Authorization": ADMIN_HEADERS["Authorization"]}
    document = build_openapi(app.router.specs)
    checked = 0
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            parameters = [p for p in operation.get("parameters", []) if p["in"] != "header"]
            if "requestBody" in operation or not parameters:
                continue
            for parameter in parameters:
                for value in _candidates(parameter["schema"], parameter["in"]):
                    path, query = template, ""
                    for other in parameters:
                        if other["in"] == "path":
                            own = value if other is parameter else "x"
                            path = path.replace(f"{{{other['name']}}}", encode(str(own)))
                    if parameter["in"] == "query":
                        query = f"?{parameter['name']}={encode(str(value))}"
                    answer = call(api, method.upper(), path + query, headers=headers)
                    expected = _allowed(parameter["schema"], value)
                    assert (answer.status != 422) is expected, (
                        method,
                        path + query,
                        answer.status,
                        answer.json,
                    )
                    assert answer.status < 500, answer.json
                    checked += 1
    assert checked > 60
