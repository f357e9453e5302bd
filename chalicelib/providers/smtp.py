"""SMTP (``smtplib``) as a :class:`~chalicelib.providers.base.MailProvider`.

Contract and quirks:

- Connections are pooled: a send takes an idle connection (or opens one) and gives it back
  afterwards, so a consumer batch reuses them; at most ``max_connections`` sends run at once
  (the consumer sends a batch concurrently; SMTP cannot pipeline messages on one
  connection). :meth:`SmtpProvider.close` QUITs the idle ones. An idle connection is checked
  with NOOP before reuse and replaced when the server dropped it; a send that fails once
  begun is never repeated here (the server may have accepted it). After any failure the
  connection is discarded.
- The envelope lists every recipient (To, Cc and Bcc); the headers never contain Bcc.
- ``security``: ``"starttls"`` (submission, port 587), ``"ssl"`` (implicit TLS, port 465)
  or ``"none"`` (local relays and test servers only). Certificates are verified with
  ``ssl_context`` or the system's default context.
- If the server accepts some recipients and refuses others, the message was sent: the
  result's ``response["refused"]`` lists the refused ones (sending again would duplicate).
- The message id is the ``Message-ID`` header MMMS wrote.

Error translation:

- connection refused, timeouts, TLS failures, ``SMTPServerDisconnected``, any 4xx reply
  → :class:`ProviderUnavailableError`;
- 5xx replies (``SMTPRecipientsRefused``, ``SMTPSenderRefused``, ``SMTPDataError``, ...),
  and extensions the configuration needs but the server lacks → :class:`MessageRejectedError`;
- ``SMTPAuthenticationError`` → :class:`ProviderUnavailableError`, logged at ERROR: the
  credentials are misconfigured, which is no message's fault: the chain fails over and the
  message is retried later instead of failing for good.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from email.message import EmailMessage
from typing import Literal

from chalicelib.errors import MessageRejectedError, ProviderError, ProviderUnavailableError
from chalicelib.providers.base import OutgoingMessage, SendResult
from chalicelib.providers.mime import build_mime

log = logging.getLogger("mmms.providers")

SmtpSecurity = Literal["starttls", "ssl", "none"]


class SmtpProvider:
    """Sends over a small pool of reused SMTP connections (see module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        security: SmtpSecurity = "starttls",
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 4,
        name: str = "smtp",
    ) -> None:
        self.name = name
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._security = security
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._lock = threading.Lock()  # guards _idle
        self._idle: list[smtplib.SMTP] = []
        self._slots = threading.BoundedSemaphore(max_connections)

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            mime = build_mime(message)
        except ValueError as err:
            raise MessageRejectedError(self.name, f"invalid message: {err}") from err
        recipients = [address.email for address in message.all_recipients]
        with self._slots:
            try:
                refused = self._deliver(mime, message.sender.email, recipients)
            except (smtplib.SMTPException, OSError) as err:
                raise self._translate(err) from err
        message_id = str(mime["Message-ID"])
        response: dict[str, object] = {"message_id": message_id}
        if refused:
            response["refused"] = {
                rcpt: [code, text.decode(errors="replace")]
                for rcpt, (code, text) in refused.items()
            }
            log.warning(
                "SMTP server refused some recipients; sent to the others",
                extra={"provider": self.name, "refused": sorted(refused)},
            )
        return SendResult(provider=self.name, message_id=message_id, response=response)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()

    def _deliver(
        self, mime: EmailMessage, sender: str, recipients: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        """Send on a live pooled connection, given back on success and closed on any failure.

        Once ``send_message`` has begun it is never repeated: a drop after the final "." may
        come after the server accepted the message, and sending again would duplicate it.
        """
        connection = self._checkout()
        try:
            refused = connection.send_message(mime, sender, recipients)
        except BaseException:
            connection.close()
            raise
        with self._lock:
            self._idle.append(connection)
        return refused

    def _checkout(self) -> smtplib.SMTP:
        """An idle connection that still answers NOOP, else a new one.

        Servers close idle connections (Postfix after 300 s, often with a 421 first): checking
        before use costs one round trip and keeps those closes from failing a send.
        """
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._connect()
            try:
                if connection.noop()[0] == 250:
                    return connection
            except (smtplib.SMTPException, OSError):
                pass
            connection.close()

    def _connect(self) -> smtplib.SMTP:
        context = self._ssl_context or ssl.create_default_context()
        connection: smtplib.SMTP
        if self._security == "ssl":
            connection = smtplib.SMTP_SSL(
                self._host, self._port, timeout=self._timeout, context=context
            )
        else:
            connection = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            connection.ehlo()
            if self._security == "starttls":
                connection.starttls(context=context)
                connection.ehlo()
            if self._username is not None:
                connection.login(self._username, self._password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _translate(self, err: smtplib.SMTPException | OSError) -> ProviderError:
        if isinstance(err, smtplib.SMTPRecipientsRefused):
            replies = {rcpt: _reply(code, text) for rcpt, (code, text) in err.recipients.items()}
            text = f"every recipient refused: {replies}"
            if all(400 <= code < 500 for code, _ in err.recipients.values()):
                return ProviderUnavailableError(self.name, text, response=replies)
            return MessageRejectedError(self.name, text, response=replies)
        if isinstance(err, smtplib.SMTPResponseException):
            return self._translate_reply(err)
        if isinstance(err, smtplib.SMTPNotSupportedError):
            log.error(
                "SMTP server lacks an extension the configuration needs",
                extra={"provider": self.name, "error": str(err)},
            )
            return MessageRejectedError(self.name, f"server does not support: {err}")
        return ProviderUnavailableError(self.name, f"{type(err).__name__}: {err}")

    def _translate_reply(self, err: smtplib.SMTPResponseException) -> ProviderError:
        reply = _reply(err.smtp_code, err.smtp_error)
        if isinstance(err, smtplib.SMTPAuthenticationError):
            log.error(
                "SMTP authentication failed: SMTP_USERNAME/SMTP_PASSWORD are misconfigured",
                extra={"provider": self.name, "smtp_code": err.smtp_code},
            )
            # Misconfiguration, not this message's fault: fail over, and retry it later.
            return ProviderUnavailableError(
                self.name,
                f"authentication failed ({err.smtp_code}): credentials misconfigured",
                response=reply,
            )
        text = f"{type(err).__name__} {err.smtp_code}: {reply['text']}"
        if err.smtp_code >= 500:
            return MessageRejectedError(self.name, text, response=reply)
        return ProviderUnavailableError(self.name, text, response=reply)


def _reply(code: int, text: bytes | str) -> dict[str, object]:
    decoded = text.decode(errors="replace") if isinstance(text, bytes) else text
    return {"code": code, "text": decoded}
