"""Mailgun's HTTP API (``POST /v3/{domain}/messages.mime``) as a mail provider.

The MIME variant is used instead of ``/messages`` so attachments, headers and the
``Message-ID`` travel byte-exact (:func:`~chalicelib.providers.mime.build_mime`). The request
is ``multipart/form-data`` with

- ``to`` repeated once per envelope recipient (To, Cc *and* Bcc: Mailgun delivers to these
  addresses only, whatever the headers say);
- ``message``: the MIME bytes as a file upload (no part Content-Type, like Mailgun's own
  ``requests`` example);
- ``v:<tag>``: one user variable per ``message.tags`` entry (Mailgun echoes them in events
  and webhooks).

Authentication is HTTP basic ``api:<API key>``. Region: ``https://api.mailgun.net`` (US,
default) or ``https://api.eu.mailgun.net`` for domains created in the EU region.

Success is ``200 {"id": "<...>", "message": "Queued. Thank you."}``; the message id is the
``id`` without its angle brackets. Errors: 429 is :class:`ProviderThrottledError` (back off,
same provider); 408/5xx, connection errors and timeouts are :class:`ProviderUnavailableError`;
400/402/404/413 and other 4xx are :class:`MessageRejectedError`; 401/403 (bad key, domain not
allowed) are logged at ERROR and fail over: the configuration is wrong, not the message.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

from chalicelib.errors import (
    MessageRejectedError,
    ProviderError,
    ProviderThrottledError,
    ProviderUnavailableError,
)
from chalicelib.providers.base import OutgoingMessage, SendResult
from chalicelib.providers.mime import build_mime

log = logging.getLogger("mmms.providers")


class MailgunProvider:
    """Sends the MIME message through Mailgun. ``session`` may be shared (thread-safe use)."""

    def __init__(
        self,
        api_key: str,
        domain: str,
        *,
        base_url: str = "https://api.mailgun.net",
        timeout: float = 10.0,
        session: requests.Session | None = None,
        name: str = "mailgun",
    ) -> None:
        self.name = name
        self._auth = ("api", api_key)
        self._url = f"{base_url.rstrip('/')}/v3/{domain}/messages.mime"
        self._timeout = timeout
        self._session = session or requests.Session()

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            mime = build_mime(message)
        except ValueError as err:
            raise MessageRejectedError(self.name, f"invalid message: {err}") from err
        fields = [("to", address.email) for address in message.all_recipients]
        fields += [(f"v:{key}", value) for key, value in message.tags.items()]
        try:
            answer = self._session.post(
                self._url,
                auth=self._auth,
                data=fields,
                files={"message": ("message.mime", mime.as_bytes())},
                timeout=self._timeout,
            )
        except requests.RequestException as err:
            raise ProviderUnavailableError(
                self.name, f"Mailgun unreachable: {type(err).__name__}: {err}"
            ) from err
        body = _body(answer)
        if answer.status_code != 200:
            raise self._translate(answer.status_code, body)
        raw_id = str(body.get("id", "")) if isinstance(body, dict) else ""
        message_id = raw_id.strip().strip("<>") or str(mime["Message-ID"]).strip("<>")
        return SendResult(
            provider=self.name,
            message_id=message_id,
            response=body if isinstance(body, dict) else {"body": body},
        )

    def close(self) -> None:
        self._session.close()

    def _translate(self, status: int, body: Any) -> ProviderError:
        detail = body.get("message", body) if isinstance(body, dict) else body
        text = f"HTTP {status}: {detail}"
        response = {"status": status, "body": body}
        if status == 429:
            return ProviderThrottledError(self.name, text, response=response)
        if status == 408 or status >= 500 or status < 400:
            return ProviderUnavailableError(self.name, text, response=response)
        if status in (401, 403):
            log.error(
                "Mailgun refused the API key or domain: MAILGUN_* settings are wrong",
                extra={"provider": self.name, "http_status": status},
            )
            # Misconfiguration, not this message's fault: fail over, and retry it later.
            return ProviderUnavailableError(self.name, text, response=response)
        return MessageRejectedError(self.name, text, response=response)


def _body(answer: requests.Response) -> Any:
    """Mailgun answers JSON, except a bare ``Forbidden`` text on 401."""
    try:
        return answer.json()
    except ValueError:
        return answer.text
