"""Servers integration tests talk to: aiosmtpd (TLS + AUTH) and fake Mailgun/SendGrid APIs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.http_provider_server import FakeProviderApi, running_provider_api
from tests.support.smtp_server import SmtpTestServer, TlsFiles, make_tls_files, running_smtp_server


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_starttls(tls_files: TlsFiles) -> Iterator[SmtpTestServer]:
    with running_smtp_server(tls_files, "starttls") as server:
        yield server


@pytest.fixture
def smtp_ssl(tls_files: TlsFiles) -> Iterator[SmtpTestServer]:
    with running_smtp_server(tls_files, "ssl") as server:
        yield server


@pytest.fixture
def provider_api() -> Iterator[FakeProviderApi]:
    with running_provider_api() as api:
        yield api
