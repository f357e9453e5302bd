"""The app served over real HTTP by Chalice's local server, in a thread of the test run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from chalice.config import Config
from chalice.local import create_local_server

from mmms_local import gateway


@contextmanager
def serving() -> Iterator[str]:
    """Serve ``app`` (with the installed container) on a free port; yield its base URL."""
    gateway.install()
    import app

    original = app.app.__class__  # create_local_server swaps the app's class: put it back
    server = create_local_server(
        app.app, Config.create(chalice_stage="dev", app_name="mmms"), "127.0.0.1", 0
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server.server_address[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=5)
        app.app.__class__ = original
