"""A real SMTP server (aiosmtpd) on 127.0.0.1 for provider tests: TLS, AUTH, scripted replies.

``running_smtp_server(tls_files, security="starttls" | "ssl" | "none")`` starts it on a free
port. It requires AUTH (PLAIN/LOGIN, only over TLS) when ``security`` is not ``"none"``,
records every accepted message (``received``: envelope sender, envelope recipients, raw
bytes), counts client connections (``connections``) and can be told to

- answer a recipient with a given reply (``reply_to_recipient("x@y", "550 ...")``),
- answer the next DATA with a given reply (``reply_to_next_data("451 ...")``),
- drop every open connection (``drop_connections()``), as a server's idle timeout would,
- hold the next messages' DATA until that many are held at once (``hold_data_until(4)``), so
  concurrent clients are proven to be sending side by side.

The TLS certificate comes from :func:`make_tls_files`: a throw-away CA and a
``localhost``/``127.0.0.1`` certificate it signed, generated with ``cryptography``;
``client_context()`` trusts that CA only, so clients really verify the certificate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

USERNAME = "mailer"
PASSWORD = "correct horse battery staple"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.content)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []
        self.recipient_replies: dict[str, str] = {}
        self.data_replies: deque[str] = deque()
        self.hold_until = 0  # DATA waits until this many are waiting (0: never waits)
        self.held = 0
        self._all_held: asyncio.Event | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        reply = self.recipient_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.held < self.hold_until:
            self.held += 1
            if self._all_held is None:
                self._all_held = asyncio.Event()  # on the server's loop
            if self.held == self.hold_until:
                self._all_held.set()
            await self._all_held.wait()
        if self.data_replies:
            return self.data_replies.popleft()
        self.received.append(
            ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        )
        return "250 2.0.0 Message accepted"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    valid = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=valid, handled=False)


class _CountingController(Controller):
    """Counts connections (aiosmtpd builds one SMTP protocol per connection) on port 0."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[SMTP] = []

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # Implicit TLS: aiosmtpd cannot tell that AUTH does run over TLS here.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            protocol = super().factory()
        self.sessions.append(protocol)
        return protocol

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpTestServer:
    def __init__(
        self, controller: _CountingController, handler: _Handler, tls: TlsFiles, security: str
    ) -> None:
        self._controller = controller
        self._handler = handler
        self.tls = tls
        self.security = security
        self.host = HOST
        self.port: int = controller.port

    @property
    def received(self) -> list[ReceivedMail]:
        return self._handler.received

    @property
    def connections(self) -> int:
        return len(self._controller.sessions)

    def client_context(self) -> ssl.SSLContext:
        return self.tls.client_context()

    def reply_to_recipient(self, address: str, reply: str) -> None:
        self._handler.recipient_replies[address] = reply

    def reply_to_next_data(self, reply: str) -> None:
        self._handler.data_replies.append(reply)

    def hold_data_until(self, count: int) -> None:
        """The next ``count`` messages wait at DATA until all ``count`` have reached it."""
        self._handler.hold_until = count

    def drop_connections(self) -> None:
        async def close_all() -> None:
            for protocol in self._controller.sessions:
                if protocol.transport is not None:
                    protocol.transport.close()
            await asyncio.sleep(0.05)

        asyncio.run_coroutine_threadsafe(close_all(), self._controller.loop).result(timeout=5)


@contextmanager
def running_smtp_server(
    tls: TlsFiles, security: Literal["starttls", "ssl", "none"] = "starttls"
) -> Iterator[SmtpTestServer]:
    handler = _Handler()
    options: dict[str, Any] = {}
    if security == "starttls":
        options = {"tls_context": tls.server_context(), "require_starttls": True}
    elif security == "ssl":
        # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; here all of it is TLS.
        options = {"ssl_context": tls.server_context(), "auth_require_tls": False}
    if security != "none":
        options |= {"authenticator": _authenticate, "auth_required": True}
    controller = _CountingController(handler, hostname=HOST, port=0, **options)
    controller.start()
    controller.sessions.clear()  # the start-up probe is not a client connection
    try:
        yield SmtpTestServer(controller, handler, tls, security)
    finally:
        controller.stop()


def unused_port() -> int:
    """A loopback port nothing listens on (bound and released just now)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


def make_tls_files(directory: Path) -> TlsFiles:
    """A throw-away CA and a certificate for localhost/127.0.0.1 that it signed."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MMMS test CA")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        _builder(name, ca_name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address(HOST)),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: Any, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
