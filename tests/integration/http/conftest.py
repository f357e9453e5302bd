from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client

from chalicelib.bootstrap import Container
from mmms_local import gateway


@pytest.fixture
def client(services: Container) -> Iterator[Client]:
    """The real app, through Chalice's local gateway, on the test database."""
    gateway.install()
    import app

    with Client(app.app) as test_client:
        yield test_client
