"""``make run``: the API on 127.0.0.1 with embedded defaults, no AWS account needed.

- PostgreSQL: ``DATABASE_URL`` if set, else an embedded server whose data lives in
  ``.mmms/pgdata`` (kept between runs).
- ``ADMIN_TOKEN``: from the environment, else generated once into ``.mmms/admin_token``.
- Migrations are applied, then Chalice's local server serves ``app.py``.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from mmms_local import gateway

STATE_DIR = Path(os.environ.get("MMMS_HOME", ".mmms"))


def _database_url() -> tuple[str, object | None]:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured, None
    import pgserver

    data = (STATE_DIR / "pgdata").resolve()
    data.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data, cleanup_mode="stop")
    return server.get_uri(), server


def _admin_token() -> str:
    configured = os.environ.get("ADMIN_TOKEN")
    if configured:
        return configured
    token_file = STATE_DIR / "admin_token"
    if not token_file.exists():
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        token_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        token_file.chmod(0o600)
    return token_file.read_text(encoding="utf-8").strip()


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    database_url, embedded = _database_url()
    os.environ["DATABASE_URL"] = database_url
    admin_token = _admin_token()
    os.environ["ADMIN_TOKEN"] = admin_token
    os.environ.setdefault("CORS_ALLOW_ORIGINS", "http://localhost:4321")

    from chalice.config import Config
    from chalice.local import create_local_server

    from chalicelib.bootstrap import container
    from chalicelib.migrate import apply_migrations

    apply_migrations(database_url)
    container()  # fail now, naming the setting, rather than on the first request
    gateway.install()
    import app

    server = create_local_server(
        app.app, Config.create(chalice_stage="dev", app_name="mmms"), host, port
    )
    print(f"MMMS API      http://{host}:{port}/v1/health", flush=True)
    where = f"embedded, data in {STATE_DIR / 'pgdata'}" if embedded else "DATABASE_URL"
    print(f"Database      {where}", flush=True)
    print(f"Admin token   {admin_token}", flush=True)
    print("Stop with Ctrl-C", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nStopping", file=sys.stderr, flush=True)
    finally:
        container().close()
        if embedded is not None:
            embedded.cleanup()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
