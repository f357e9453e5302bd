"""Waiting for a state the test can observe but not be told of (a session blocked in
PostgreSQL, a thread parked inside a library). The test goes on only once the state holds;
how long that took never decides the outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Return once ``condition()`` is true; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.005)
