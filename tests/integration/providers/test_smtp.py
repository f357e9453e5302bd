"""SmtpProvider against a real SMTP server (aiosmtpd) with STARTTLS/implicit TLS and AUTH."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.errors import MessageRejectedError, ProviderUnavailableError
from chalicelib.providers.base import Address
from chalicelib.providers.factory import build_provider_chain, load_provider_settings
from chalicelib.providers.smtp import SmtpProvider
from tests.support.fake_providers import PDF_BYTES, make_message, with_attachment
from tests.support.smtp_server import PASSWORD, USERNAME, SmtpTestServer, unused_port


def provider_for(server: SmtpTestServer, *, password: str = PASSWORD) -> SmtpProvider:
    return SmtpProvider(
        server.host,
        server.port,
        username=USERNAME,
        password=password,
        security="ssl" if server.security == "ssl" else "starttls",
        timeout=5,
        ssl_context=server.client_context(),
    )


@pytest.fixture
def smtp(smtp_starttls: SmtpTestServer) -> Iterator[SmtpProvider]:
    provider = provider_for(smtp_starttls)
    yield provider
    provider.close()


def test_starttls_with_auth_delivers_to_every_envelope_recipient(
    smtp_starttls: SmtpTestServer, smtp: SmtpProvider
) -> None:
    result = smtp.send(with_attachment(make_message()))

    [mail] = smtp_starttls.received
    assert mail.mail_from == "noreply@example.com"
    assert mail.rcpt_tos == ["alice@example.org", "carol@example.org", "bob@example.net"]
    received = mail.message()
    assert received["Bcc"] is None
    assert b"bob@example.net" not in mail.content
    assert received["Subject"] == "Grüße ✓"
    assert next(iter(received.iter_attachments())).get_content() == PDF_BYTES
    assert result.provider == "smtp"
    assert result.message_id == received["Message-ID"]


def test_implicit_tls_with_auth_delivers(smtp_ssl: SmtpTestServer) -> None:
    provider = provider_for(smtp_ssl)
    try:
        provider.send(make_message())
    finally:
        provider.close()

    assert [m.rcpt_tos[0] for m in smtp_ssl.received] == ["alice@example.org"]


def test_one_connection_carries_several_sends(
    smtp_starttls: SmtpTestServer, smtp: SmtpProvider
) -> None:
    smtp.send(make_message(subject="one"))
    smtp.send(make_message(subject="two"))

    assert [m.message()["Subject"] for m in smtp_starttls.received] == ["one", "two"]
    assert smtp_starttls.connections == 1


def test_concurrent_sends_share_a_bounded_pool_of_reused_connections(
    smtp_starttls: SmtpTestServer, smtp: SmtpProvider
) -> None:
    # The first four messages are held at DATA until all four are there: four sends really
    # run side by side, each on a connection of its own.
    smtp_starttls.hold_data_until(4)
    for round_ in range(2):
        with ThreadPoolExecutor(max_workers=10) as pool:
            subjects = [f"{round_}-{n}" for n in range(10)]
            results = list(
                pool.map(lambda subject: smtp.send(make_message(subject=subject)), subjects)
            )
        assert len({r.message_id for r in results}) == 10

    assert sorted(m.message()["Subject"] for m in smtp_starttls.received) == sorted(
        f"{r}-{n}" for r in range(2) for n in range(10)
    )
    # Bounded by the default max_connections (4), and reused by everything after.
    assert smtp_starttls.connections == 4


def test_a_connection_dropped_by_the_server_is_reopened_once(
    smtp_starttls: SmtpTestServer, smtp: SmtpProvider
) -> None:
    smtp.send(make_message(subject="before"))
    smtp_starttls.drop_connections()

    smtp.send(make_message(subject="after"))

    assert [m.message()["Subject"] for m in smtp_starttls.received] == ["before", "after"]
    assert smtp_starttls.connections == 2


def test_a_wrong_password_is_unavailable_not_a_rejection(smtp_starttls: SmtpTestServer) -> None:
    with pytest.raises(ProviderUnavailableError, match="credentials misconfigured"):
        provider_for(smtp_starttls, password="wrong").send(make_message())
    assert smtp_starttls.received == []


def test_nothing_listening_is_unavailable() -> None:
    provider = SmtpProvider("127.0.0.1", unused_port(), security="none", timeout=2)

    with pytest.raises(ProviderUnavailableError) as raised:
        provider.send(make_message())
    assert raised.value.provider == "smtp"


def test_a_4xx_recipient_reply_is_unavailable(
    smtp_starttls: SmtpTestServer, smtp: SmtpProvider
) -> None:
    smtp_starttls.reply_to_recipient("alice@example.org", "451 4.7.1 Greylisted, try later")

    with pytest.raises(ProviderUnavailableError, match="451"):
        smtp.send(make_message(cc=(), bcc=()))


def test_a_4xx_data_reply_is_unavailable_and_the_next_send_works(
    smtp_starttls: SmtpTestServer, smtp: SmtpProvider
) -> None:
    smtp_starttls.reply_to_next_data("452 4.3.1 Insufficient system storage")

    with pytest.raises(ProviderUnavailableError, match="452"):
        smtp.send(make_message())
    smtp.send(make_message())

    assert len(smtp_starttls.received) == 1


def test_a_550_recipient_is_a_rejection(smtp_starttls: SmtpTestServer, smtp: SmtpProvider) -> None:
    smtp_starttls.reply_to_recipient("nobody@example.org", "550 5.1.1 No such user")

    with pytest.raises(MessageRejectedError, match="550") as raised:
        smtp.send(make_message(to=(Address("nobody@example.org"),), cc=(), bcc=()))
    assert raised.value.response["nobody@example.org"]["code"] == 550


def test_a_partly_refused_message_is_sent_and_reports_the_refused_recipient(
    smtp_starttls: SmtpTestServer, smtp: SmtpProvider
) -> None:
    smtp_starttls.reply_to_recipient("bob@example.net", "550 5.1.1 No such user")

    result = smtp.send(make_message())

    assert smtp_starttls.received[0].rcpt_tos == ["alice@example.org", "carol@example.org"]
    assert result.response["refused"]["bob@example.net"][0] == 550


def test_close_is_safe_twice(smtp: SmtpProvider) -> None:
    smtp.send(make_message())
    smtp.close()
    smtp.close()


def test_a_send_dropped_after_the_message_was_accepted_is_not_sent_again() -> None:
    """A server that takes the second message, then drops before replying 250."""
    accepted: list[int] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve(conn: socket.socket, number: int) -> None:
        stream = conn.makefile("rb")
        conn.sendall(b"220 test\r\n")
        while line := stream.readline():
            if line[:4].upper() == b"DATA":
                conn.sendall(b"354 go\r\n")
                while stream.readline() not in (b".\r\n", b""):
                    pass
                accepted.append(number)
                if len(accepted) == 2:  # committed, then the connection drops
                    conn.close()
                    return
                conn.sendall(b"250 ok\r\n")
            elif line[:4].upper() == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"250 ok\r\n")
        conn.close()

    def accept_all() -> None:
        for number in range(1, 10):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn, number), daemon=True).start()

    threading.Thread(target=accept_all, daemon=True).start()
    provider = SmtpProvider("127.0.0.1", listener.getsockname()[1], security="none", timeout=5)
    try:
        provider.send(make_message(subject="first"))
        with pytest.raises(ProviderUnavailableError):
            provider.send(make_message(subject="second"))
    finally:
        listener.close()

    assert accepted == [1, 1]  # the second message reached the server once, not twice


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_the_factory_hands_the_configured_smtp_settings_to_the_provider(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, security: str
) -> None:
    """Port, security, username and password from the environment: the server takes the mail
    only over TLS on its own port and after AUTH with exactly these credentials."""
    server: SmtpTestServer = request.getfixturevalue(f"smtp_{security}")
    for name, value in {
        "MAIL_PROVIDERS": "smtp",
        "SMTP_HOST": server.host,
        "SMTP_PORT": str(server.port),
        "SMTP_SECURITY": security,
        "SMTP_USERNAME": USERNAME,
        "SMTP_PASSWORD": PASSWORD,
        "SMTP_TIMEOUT": "5",
        "SSL_CERT_FILE": str(server.tls.ca_file),  # the default context trusts the test CA
    }.items():
        monkeypatch.setenv(name, value)
    chain = build_provider_chain(load_provider_settings(), ses_client_factory=object)
    try:
        result = chain.send(make_message(subject="configured"))
    finally:
        chain.close()

    assert result.provider == "smtp"
    assert [m.message()["Subject"] for m in server.received] == ["configured"]
