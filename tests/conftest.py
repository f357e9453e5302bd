"""Fixtures shared by every test layer: moto's server and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.moto_server import MotoServer, running_moto_server


@pytest.fixture(scope="session")
def moto_session() -> Iterator[MotoServer]:
    with running_moto_server() as server:
        yield server


@pytest.fixture
def moto(moto_session: MotoServer) -> MotoServer:
    """moto's server, with every backend reset before the test."""
    moto_session.reset()
    return moto_session
