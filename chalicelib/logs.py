"""Structured logging: one JSON object per line on stdout (CloudWatch-friendly).

Every line carries the current request id (:data:`REQUEST_ID`). Extra fields passed with
``log.info("msg", extra={...})`` become top-level keys. Callers never pass API keys or
tokens: only key ids.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("mmms_request_id", default=None)

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send the ``mmms`` loggers to stdout as JSON. Idempotent."""
    logger = logging.getLogger("mmms")
    logger.setLevel(level)
    if not any(getattr(h, "_mmms", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        handler._mmms = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
