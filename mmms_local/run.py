"""``make run``: the API and a queue worker on this machine, no AWS account needed.

Embedded defaults, each replaced by the real thing when its variable is set:

- PostgreSQL: ``DATABASE_URL``, else an embedded server with its data in ``.mmms/pgdata``;
- queues: ``MAIL_QUEUE_URL`` + ``MAIL_RESULT_QUEUE_URL`` (SQS, or an emulator through
  ``AWS_ENDPOINT_URL``), else durable local queues in that PostgreSQL;
- mail: ``MAIL_PROVIDERS``, else the capture provider writing ``.eml`` files to
  ``.mmms/outbox`` (see http://127.0.0.1:8000/v1/dev);
- ``ADMIN_TOKEN``: from the environment, else generated once into ``.mmms/admin_token``;
- campaign files: ``CAMPAIGN_BUCKET`` (S3), else ``.mmms/uploads`` through this server (its
  ``PUT /v1/dev/campaign-uploads/...``, see ``mmms_local/uploads.py``).

The worker runs the same consumer code as the Lambda. Ctrl-C (or SIGTERM) stops both.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from mmms_local import gateway

STATE_DIR = Path(os.environ.get("MMMS_HOME", ".mmms"))
LOCAL_QUEUE = "local://processing"
LOCAL_RESULTS = "local://results"
CAMPAIGN_UPLOADS = "/v1/dev/campaign-uploads"


def _embedded_database() -> tuple[str, Any]:
    from mmms_local.embedded_pg import start_embedded_postgres

    data = (STATE_DIR / "pgdata").resolve()
    data.mkdir(parents=True, exist_ok=True)
    return start_embedded_postgres(data)


def _admin_token() -> str:
    token_file = STATE_DIR / "admin_token"
    if not token_file.exists():
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        token_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        token_file.chmod(0o600)
    return token_file.read_text(encoding="utf-8").strip()


def _prepare_environment(host: str, port: int) -> tuple[Any, bool]:
    """Fill in the embedded defaults; return (embedded server or None, local queues?)."""
    embedded = None
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"], embedded = _embedded_database()
    if not os.environ.get("ADMIN_TOKEN") and not os.environ.get("ADMIN_SECRET_NAME"):
        os.environ["ADMIN_TOKEN"] = _admin_token()
    local_queues = not os.environ.get("MAIL_QUEUE_URL")
    if local_queues:
        os.environ["MAIL_QUEUE_URL"] = LOCAL_QUEUE
        os.environ["MAIL_RESULT_QUEUE_URL"] = LOCAL_RESULTS
    os.environ.setdefault("MAIL_PROVIDERS", "capture")
    os.environ.setdefault("CAPTURE_DIR", str(STATE_DIR / "outbox"))
    os.environ.setdefault("CORS_ALLOW_ORIGINS", "http://localhost:4321")
    os.environ["MMMS_DEV_ROUTES"] = "1"
    if not os.environ.get("CAMPAIGN_BUCKET"):
        os.environ.setdefault("CAMPAIGN_UPLOAD_DIR", str((STATE_DIR / "uploads").resolve()))
        os.environ.setdefault("CAMPAIGN_UPLOAD_URL", f"http://{host}:{port}{CAMPAIGN_UPLOADS}")
    return embedded, local_queues


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _build(local_queues: bool) -> tuple[Any, Any, Any, Any, Any]:
    """(settings, services, receive, receive events or None, queue database): the local
    queues live in the database (the uploads queue always: S3 has no local stand-in)."""
    from chalicelib.aws import AwsClients
    from chalicelib.bootstrap import build_container
    from chalicelib.config import load_settings
    from chalicelib.db import Database
    from chalicelib.errors import ConfigurationError
    from chalicelib.migrate import apply_migrations
    from mmms_local.local_queue import (
        EVENTS,
        PROCESSING,
        RESULTS,
        LocalQueue,
        ensure_queue_table,
    )
    from mmms_local.worker import sqs_receiver

    try:
        settings = load_settings()
    except ConfigurationError as err:
        sys.exit(f"mmms: {err}")
    apply_migrations(os.environ["DATABASE_URL"])
    queue_db = Database(os.environ["DATABASE_URL"], max_size=4)
    ensure_queue_table(queue_db)
    if not local_queues:
        sqs = AwsClients(settings).sqs()
        receive = sqs_receiver(sqs, str(settings.mail_queue_url))
        events_url = settings.mail_events_queue_url
        receive_events = sqs_receiver(sqs, events_url) if events_url else None
        return settings, build_container(settings), receive, receive_events, queue_db
    processing = LocalQueue(queue_db, PROCESSING, max_receives=settings.mail_queue_max_receives)
    events = LocalQueue(queue_db, EVENTS, max_receives=settings.mail_queue_max_receives)
    services = build_container(
        settings,
        processing_queue=processing,
        result_queue=LocalQueue(queue_db, RESULTS),
        events_queue=events,
    )
    return settings, services, processing.receive, events.receive, queue_db


def _local_uploads(services: Any, queue_db: Any) -> Any:
    """The local uploads queue; with files kept in the upload folder, the upload server that
    fills it (S3 and its notifications do that on AWS)."""
    from chalicelib.uploads.local import LocalUploadStore
    from mmms_local import uploads
    from mmms_local.local_queue import UPLOADS, LocalQueue

    queue = LocalQueue(queue_db, UPLOADS, max_receives=5, visibility_seconds=900)
    store = services.upload_store
    if isinstance(store, LocalUploadStore):
        uploads.install(
            store.path_of,
            services.settings.campaign_max_bytes,
            services.campaigns.upload_refusal,
            lambda key, size: queue.send_many([uploads.notification(key, size)]),
        )
    return queue


def _banner(host: str, port: int, embedded: Any, queues: str) -> None:
    where = f"embedded, data in {STATE_DIR / 'pgdata'}" if embedded else "DATABASE_URL"
    lines = [
        f"MMMS API      http://{host}:{port}/v1/health",
        f"Outbox        http://{host}:{port}/v1/dev",
        f"Providers     {os.environ['MAIL_PROVIDERS']}",
        f"Database      {where}",
        f"Queues        {queues}; worker running",
        f"Campaigns     files in {os.environ.get('CAMPAIGN_UPLOAD_DIR') or 'CAMPAIGN_BUCKET'}",
        f"Admin token   {os.environ.get('ADMIN_TOKEN', '(from ADMIN_SECRET_NAME)')}",
        "Stop with Ctrl-C",
    ]
    print("\n".join(lines), flush=True)


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    embedded, local_queues = _prepare_environment(host, port)

    from chalice.config import Config
    from chalice.local import create_local_server

    from chalicelib.bootstrap import use_container
    from mmms_local.worker import Worker

    settings, services, receive, receive_events, queue_db = _build(local_queues)
    use_container(services)
    uploads_queue = _local_uploads(services, queue_db)
    worker = Worker(
        services,
        receive,
        receive_events=receive_events,
        uploads=(uploads_queue.receive, uploads_queue),
    )
    gateway.install()
    import app

    server = create_local_server(
        app.app, Config.create(chalice_stage="dev", app_name="mmms"), host, port
    )
    worker.start()
    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    _banner(
        host,
        port,
        embedded,
        "local (in the database)" if local_queues else str(settings.mail_queue_url),
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nStopping", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        worker.stop()
        worker.join(timeout=30)
        server.server.server_close()
        services.close()
        if queue_db is not None:
            queue_db.close()
        if embedded is not None:
            embedded.cleanup()
    print("Stopped", flush=True)


if __name__ == "__main__":
    main()
