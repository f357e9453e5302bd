"""Secrets Manager adapter: read a secret once per process.

The boto3 client is created by a factory on first use, never at import time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import ConfigurationError, ServiceUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class SecretStore:
    """Reads secrets by name and caches them for the life of the process."""

    def __init__(self, client_factory: Callable[[], SecretsManagerClient]) -> None:
        self._client_factory = client_factory
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def get_string(self, name: str) -> str:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = self._fetch(name)
            return self._cache[name]

    def get_json(self, name: str) -> dict[str, Any]:
        raw = self.get_string(name)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ConfigurationError(f"Secret {name!r} is not JSON") from err
        if not isinstance(value, dict):
            raise ConfigurationError(f"Secret {name!r} is not a JSON object")
        return value

    def _fetch(self, name: str) -> str:
        try:
            response = self._client_factory().get_secret_value(SecretId=name)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in {"ResourceNotFoundException", "AccessDeniedException"}:
                raise ConfigurationError(f"Secret {name!r} cannot be read: {code}") from err
            raise ServiceUnavailableError(f"Secrets Manager failed: {code}") from err
        except BotoCoreError as err:
            raise ServiceUnavailableError("Secrets Manager is unreachable") from err
        if "SecretString" not in response:
            raise ConfigurationError(f"Secret {name!r} has no SecretString")
        return response["SecretString"]
