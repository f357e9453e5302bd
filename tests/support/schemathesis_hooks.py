"""Schemathesis hooks for the contract run (``tests/integration/mail/test_contract.py``).

Loaded with ``SCHEMATHESIS_HOOKS=tests.support.schemathesis_hooks``. Six of the API's rules
depend on state that a JSON Schema cannot state, so generated
bodies are adjusted to respect them; every check stays on:

- ``email_id`` names one email: posting it again with other content is a 400 (idempotency).
  Each generated ``POST /v1/mail`` and ``POST /v1/campaigns`` gets an ``email_id`` of its own.
- A campaign's ``send_at`` is at most 30 days ahead (422 beyond): a later generated date is
  moved to an hour from now.
- ``expires_at`` of a new key must be in the future. A generated past date is moved a year
  ahead.
- ``subject``, ``html_template`` and ``text_template`` (and a stored template's ``subject``,
  ``html`` and ``text``) are Jinja templates: ``{{``, ``{%`` and ``{#`` open expressions, so a
  random string is not always one (422). Braces in generated templates become brackets;
  templates themselves are tested in test_render_budget.py and test_stored_templates.py.
- Recipients of one email are distinct (by ``emailRecipientId``, else address, in any
  case): a duplicate is a 422. Generated duplicates get an ``emailRecipientId`` of their own.
- A stored template's versions are 1..n: a generated ``version`` asks for version 1.
- A suppressed address is never sent to (a single send to it is a 400). Addresses the run
  suppresses get a local part of their own, so they are not the ones it then mails.
- A key has two names in its paths, the key and its ``key_id``: the document's links use the
  ``key_id``, and links schemathesis infers use the key. A key deleted by one name is a 404
  by the other, which schemathesis would take for a created resource gone missing (ST302):
  a key the run created is named by its ``key_id`` in every path. The key as a path name is
  tested in test_api_keys.py.

Only values the schema already accepts are touched, so negative cases stay negative.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    """Every phase (examples, coverage, fuzzing, stateful) sends through here."""
    _first_version(case)
    _by_key_id(case)
    body = case.body
    if not isinstance(body, dict):
        return
    path = case.operation.path
    if path == "/v1/campaigns" and isinstance(body.get("send_at"), str):
        body["send_at"] = _within_a_month(body["send_at"])
    if path in ("/v1/mail", "/v1/campaigns") and _is_identifier(body.get("email_id")):
        body["email_id"] = f"fuzz-{uuid.uuid4().hex}"
        _distinct_recipients(body.get("recipients"))
        _no_braces(body, ("subject", "html_template", "text_template"))
    if path in ("/v1/templates", "/v1/templates/{template_id}"):
        _no_braces(body, ("subject", "html", "text"))
    if path == "/v1/api-key" and isinstance(body.get("expires_at"), str):
        body["expires_at"] = _in_future(body["expires_at"])
    if path == "/v1/suppressions" and isinstance(body.get("addresses"), list):
        body["addresses"] = [_own_local_part(a) for a in body["addresses"]]


# Each key the run created, by the key itself: its key_id.
_KEY_IDS: dict[str, str] = {}


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    if case.operation.path != "/v1/api-key" or case.method.upper() != "POST":
        return
    if response.status_code != 200:
        return
    data = response.json().get("data") or {}
    if isinstance(data.get("api_key"), str) and isinstance(data.get("key_id"), str):
        _KEY_IDS[data["api_key"]] = data["key_id"]


def _by_key_id(case: Any) -> None:
    parameters = case.path_parameters
    if isinstance(parameters, dict) and parameters.get("api_key") in _KEY_IDS:
        parameters["api_key"] = _KEY_IDS[parameters["api_key"]]


def _first_version(case: Any) -> None:
    """A stored template's versions are 1..n: a generated ``version`` (query or preview body)
    asks for version 1, which a template just created has (a 404 for a version that does not
    exist is tested in test_stored_templates.py)."""
    if not case.operation.path.startswith("/v1/templates/"):
        return
    for part in (case.query, case.body):
        if isinstance(part, dict) and _is_number(part.get("version")):
            part["version"] = 1


def _is_number(value: object) -> bool:
    """A generated integer: JSON Schema's integers include 3.0 (bools are not numbers)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _no_braces(body: dict[str, Any], fields: tuple[str, ...]) -> None:
    for field in fields:
        if isinstance(body.get(field), str):
            body[field] = body[field].replace("{", "[").replace("}", "]")


def _is_identifier(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= 200


def _in_future(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value  # not a date-time: a negative case, left as generated
    # A day ahead at least: a key that expires during the run is a 404 to the next step.
    if parsed.tzinfo is None or parsed > datetime.now(UTC) + timedelta(days=1):
        return value
    return (datetime.now(UTC) + timedelta(days=365)).isoformat()


def _within_a_month(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value  # not a date-time: a negative case, left as generated
    if parsed.tzinfo is None or parsed <= datetime.now(UTC) + timedelta(days=29):
        return value
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def _own_local_part(address: object) -> object:
    if not isinstance(address, str) or address.count("@") != 1:
        return address
    return f"s{uuid.uuid4().hex[:12]}@{address.split('@')[1]}"


def _distinct_recipients(recipients: object) -> None:
    if not isinstance(recipients, list):
        return
    seen: set[str] = set()
    for index, recipient in enumerate(recipients):
        if not isinstance(recipient, dict) or not isinstance(recipient.get("mail"), str):
            return  # a negative case
        key = str(recipient.get("emailRecipientId") or recipient["mail"].lower())
        if key in seen:
            recipient["emailRecipientId"] = f"fuzz-{index}-{uuid.uuid4().hex[:8]}"
        seen.add(str(recipient.get("emailRecipientId") or recipient["mail"].lower()))
