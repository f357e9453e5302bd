"""SendGrid's v3 Mail Send API (``POST /v3/mail/send``) as a mail provider.

The JSON request (``Authorization: Bearer <API key>``)::

    {"personalizations": [{"to": [{"email", "name"?}], "cc": [...], "bcc": [...]}],
     "from": {...}, "reply_to": {...} | "reply_to_list": [...], "subject": "...",
     "content": [{"type": "text/plain", ...}, {"type": "text/html", ...}],
     "attachments": [{"content": <base64>, "filename", "type", "disposition": "attachment"}],
     "headers": {...}, "custom_args": {...tags}}

Quirks handled here:

- SendGrid refuses a personalization in which one address appears twice across to/cc/bcc
  (400), so later duplicates (case-insensitive) are dropped; the person still gets it once.
- ``content`` must list ``text/plain`` before ``text/html`` and must not hold empty values.
- ``reply_to`` takes one address; several go in ``reply_to_list``.
- SendGrid builds the MIME itself, so the MMMS ``Message-ID`` is not sent; header values are
  still checked for CR/LF (:func:`~chalicelib.providers.mime.validate_headers`).

Success is ``202`` with an empty body; the message id is the ``X-Message-Id`` response
header. Errors carry SendGrid's body ``{"errors": [{"message", "field", "help"}]}`` in
``response``: 429 → :class:`ProviderThrottledError` (back off); 408/5xx and network
errors/timeouts → :class:`ProviderUnavailableError`;
400/413 and other 4xx → :class:`MessageRejectedError`; 401/403 (bad key, missing scope,
unverified sender identity) are logged at ERROR and fail over: the configuration is wrong.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from typing import Any

import requests

from chalicelib.errors import (
    MessageRejectedError,
    ProviderError,
    ProviderThrottledError,
    ProviderUnavailableError,
)
from chalicelib.providers.base import Address, OutgoingMessage, SendResult
from chalicelib.providers.mime import validate_headers

log = logging.getLogger("mmms.providers")


class SendGridProvider:
    """Sends through SendGrid's JSON API. ``session`` may be shared (thread-safe use)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.sendgrid.com",
        timeout: float = 10.0,
        session: requests.Session | None = None,
        name: str = "sendgrid",
    ) -> None:
        self.name = name
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._url = f"{base_url.rstrip('/')}/v3/mail/send"
        self._timeout = timeout
        self._session = session or requests.Session()

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            validate_headers(message)
        except ValueError as err:
            raise MessageRejectedError(self.name, f"invalid message: {err}") from err
        try:
            answer = self._session.post(
                self._url,
                json=mail_send_body(message),
                headers=self._headers,
                timeout=self._timeout,
            )
        except requests.RequestException as err:
            raise ProviderUnavailableError(
                self.name, f"SendGrid unreachable: {type(err).__name__}: {err}"
            ) from err
        if answer.status_code not in (200, 202):
            raise self._translate(answer)
        message_id = answer.headers.get("X-Message-Id") or message.message_id or ""
        return SendResult(
            provider=self.name,
            message_id=message_id,
            response={"status": answer.status_code, "X-Message-Id": message_id},
        )

    def close(self) -> None:
        self._session.close()

    def _translate(self, answer: requests.Response) -> ProviderError:
        status = answer.status_code
        try:
            body: Any = answer.json()
        except ValueError:
            body = {"errors": [{"message": answer.text, "field": None, "help": None}]}
        errors = body.get("errors", []) if isinstance(body, dict) else []
        summary = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))
        text = f"HTTP {status}: {summary or body}"
        if status == 429:
            return ProviderThrottledError(self.name, text, response=body)
        if status == 408 or status >= 500 or status < 400:
            return ProviderUnavailableError(self.name, text, response=body)
        if status in (401, 403):
            log.error(
                "SendGrid refused the API key or sender: SENDGRID_* settings are wrong",
                extra={"provider": self.name, "http_status": status},
            )
            # Misconfiguration, not this message's fault: fail over, and retry it later.
            return ProviderUnavailableError(self.name, text, response=body)
        return MessageRejectedError(self.name, text, response=body)


def mail_send_body(message: OutgoingMessage) -> dict[str, Any]:
    """The documented ``/v3/mail/send`` JSON for ``message``."""
    seen: set[str] = set()
    personalization: dict[str, Any] = {}
    for field, addresses in (("to", message.to), ("cc", message.cc), ("bcc", message.bcc)):
        unique = _unique(addresses, seen)
        if unique:
            personalization[field] = unique
    body: dict[str, Any] = {
        "personalizations": [personalization],
        "from": _address(message.sender),
        "subject": message.subject,
        "content": [
            {"type": content_type, "value": value}
            for content_type, value in (("text/plain", message.text), ("text/html", message.html))
            if value
        ],
    }
    if len(message.reply_to) == 1:
        body["reply_to"] = _address(message.reply_to[0])
    elif message.reply_to:
        body["reply_to_list"] = [_address(a) for a in message.reply_to]
    if message.attachments:
        body["attachments"] = [
            {
                "content": base64.b64encode(a.content).decode("ascii"),
                "filename": a.filename,
                "type": a.content_type,
                "disposition": "attachment",
            }
            for a in message.attachments
        ]
    if message.headers:
        body["headers"] = dict(message.headers)
    if message.tags:
        body["custom_args"] = dict(message.tags)
    return body


def _unique(addresses: Iterable[Address], seen: set[str]) -> list[dict[str, str]]:
    result = []
    for address in addresses:
        key = address.email.lower()
        if key not in seen:
            seen.add(key)
            result.append(_address(address))
    return result


def _address(address: Address) -> dict[str, str]:
    if address.name:
        return {"email": address.email, "name": address.name}
    return {"email": address.email}
