"""SMTP (``smtplib``) as a :class:`~chalicelib.providers.base.MailProvider`.

Contract and quirks:

- One connection is opened on the first send and reused for the following ones (a consumer
  batch); :meth:`SmtpProvider.close` QUITs it. If a reused connection turns out to have
  been dropped by the server (``SMTPServerDisconnected`` or a reset socket), it reconnects
  once and sends again. After any other failure the connection is discarded and the next
  send opens a new one.
- A lock guards the connection: concurrent ``send`` calls from the consumer's thread pool
  are serialised over the one connection. Simple and correct; SMTP cannot pipeline
  messages on one connection anyway.
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
    """Sends over one reused, lock-guarded SMTP connection (see module docstring)."""

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
        self._lock = threading.Lock()
        self._connection: smtplib.SMTP | None = None

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            mime = build_mime(message)
        except ValueError as err:
            raise MessageRejectedError(self.name, f"invalid message: {err}") from err
        recipients = [address.email for address in message.all_recipients]
        with self._lock:
            try:
                refused = self._deliver(mime, message.sender.email, recipients)
            except (smtplib.SMTPException, OSError) as err:
                self._discard()
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
            connection, self._connection = self._connection, None
            if connection is None:
                return
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()

    def _deliver(
        self, mime: EmailMessage, sender: str, recipients: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        reused = self._connection is not None
        try:
            return self._open().send_message(mime, sender, recipients)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            if not reused:
                raise
        # The server closed the idle connection we kept: one fresh attempt.
        self._discard()
        return self._open().send_message(mime, sender, recipients)

    def _open(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
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
        self._connection = connection
        return connection

    def _discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

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
