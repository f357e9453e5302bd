"""Build the RFC 5322 / MIME form of an :class:`OutgoingMessage`.

Every provider that sends raw bytes (SMTP, SES with attachments, Mailgun's ``messages.mime``,
the capture provider) uses :func:`build_mime`, so one email looks the same whichever
provider carries it.

Structure::

    multipart/mixed                      only when there are attachments
    ├── multipart/alternative
    │   ├── text/plain; charset=utf-8
    │   └── text/html; charset=utf-8
    └── <attachment>...                  Content-Disposition: attachment

A message with only one body (text or html empty) has that single part instead of the
``multipart/alternative``.

Headers: From, To, Cc, Reply-To, Subject, Date, Message-ID, MIME-Version and the message's
extra ``headers``. **Bcc is never written**: Bcc recipients exist only in the envelope.
Non-ASCII display names and subjects are RFC 2047-encoded by :mod:`email.headerregistry`.

Header injection defence: any header name or value (addresses, display names, subject,
extra headers, message id) containing CR or LF raises :class:`ValueError`, as does an
extra header that would replace one MMMS writes itself (``From``, ``Bcc``, ``Content-*``...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, MIMEPart
from email.utils import make_msgid

from chalicelib.providers.base import Address, OutgoingMessage

# 7bit transfer encodings (quoted-printable/base64 for non-ASCII bodies) pass unchanged through
# every relay, SES's raw API and Mailgun's MIME upload; CRLF line ends are what SMTP wants.
MIME_POLICY = policy.SMTP.clone(cte_type="7bit")

_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "sender",
        "return-path",
    }
)


def build_mime(message: OutgoingMessage) -> EmailMessage:
    """The full MIME message for ``message``. Raises ValueError on unsafe header input."""
    validate_headers(message)
    mime = EmailMessage(policy=MIME_POLICY)
    mime["From"] = _header_address(message.sender)
    if message.to:
        mime["To"] = [_header_address(a) for a in message.to]
    if message.cc:
        mime["Cc"] = [_header_address(a) for a in message.cc]
    if message.reply_to:
        mime["Reply-To"] = [_header_address(a) for a in message.reply_to]
    mime["Subject"] = _safe_value("Subject", message.subject)
    mime["Date"] = datetime.now(UTC)
    mime["Message-ID"] = message_id_for(message)
    mime["MIME-Version"] = "1.0"
    for name, value in message.headers.items():
        mime[_safe_extra_name(name)] = _safe_value(name, value)

    _set_bodies(mime, message.text, message.html)
    for attachment in message.attachments:
        maintype, subtype = _split_content_type(attachment.content_type)
        mime.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=_safe_value("attachment filename", attachment.filename),
        )
    for part in mime.iter_parts():
        _drop_nested_mime_version(part)
    return mime


def validate_headers(message: OutgoingMessage) -> None:
    """Raise ValueError if anything that becomes a header could inject one.

    For providers that never build the MIME themselves (SES simple, SendGrid's JSON) but
    still must not pass CR/LF on.
    """
    for address in (message.sender, *message.all_recipients, *message.reply_to):
        _header_address(address)
    _safe_value("Subject", message.subject)
    if message.message_id:
        _safe_value("Message-ID", message.message_id)
    for name, value in message.headers.items():
        _safe_value(_safe_extra_name(name), value)
    for attachment in message.attachments:
        _safe_value("attachment filename", attachment.filename)


def message_id_for(message: OutgoingMessage) -> str:
    """``message.message_id``, or a fresh ``<...@sender-domain>`` id.

    The sender's domain is used instead of :func:`make_msgid`'s default (the host's FQDN):
    it does not leak the Lambda host name and avoids a DNS lookup per message.
    """
    if message.message_id:
        return _safe_value("Message-ID", message.message_id)
    domain = message.sender.email.rpartition("@")[2] or "mmms.invalid"
    return make_msgid(domain=_ascii_domain(domain))


def address_header(addresses: Iterable[Address]) -> str:
    """``addresses`` as one header value, non-ASCII names RFC 2047-encoded.

    For APIs that take a ready-made address string (SES's ``FromEmailAddress``).
    """
    probe = EmailMessage(policy=MIME_POLICY)
    probe["To"] = [_header_address(a) for a in addresses]
    folded = str(probe["To"].fold(policy=MIME_POLICY.clone(max_line_length=0)))
    return folded.partition(":")[2].strip()


def _set_bodies(mime: EmailMessage, text: str, html: str) -> None:
    if text and html:
        mime.set_content(text)
        mime.add_alternative(html, subtype="html")
    elif html:
        mime.set_content(html, subtype="html")
    else:
        mime.set_content(text)


def _drop_nested_mime_version(part: MIMEPart) -> None:
    """``set_content`` stamps MIME-Version on every part; RFC 2045 wants it on the top only."""
    del part["MIME-Version"]
    for child in part.iter_parts():
        _drop_nested_mime_version(child)


def _header_address(address: Address) -> HeaderAddress:
    email = _safe_value("address", address.email)
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an email address: {email!r}")
    return HeaderAddress(
        display_name=_safe_value("display name", address.name or ""),
        username=local,
        domain=_ascii_domain(domain),
    )


def _ascii_domain(domain: str) -> str:
    """IDN domains in their ``xn--`` form, which every MTA accepts without SMTPUTF8."""
    if domain.isascii():
        return domain
    return domain.encode("idna").decode("ascii")


def _safe_value(what: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} must not contain CR or LF")
    return value


def _safe_extra_name(name: str) -> str:
    if not _HEADER_NAME.match(name):
        raise ValueError(f"invalid header name {name!r}")
    lowered = name.lower()
    if lowered in _RESERVED_HEADERS or lowered.startswith("content-"):
        raise ValueError(f"header {name!r} is set by MMMS and cannot be overridden")
    return name


def _split_content_type(content_type: str) -> tuple[str, str]:
    """The attachment's type, or application/octet-stream when it is unusable.

    ``multipart/*`` and ``message/*`` cannot be base64-encoded leaves (RFC 2046), so an
    attachment claiming them is sent as opaque bytes.
    """
    maintype, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    valid = bool(maintype and subtype and _HEADER_NAME.match(maintype + subtype))
    if not valid or maintype in {"multipart", "message"}:
        return "application", "octet-stream"
    return maintype, subtype
