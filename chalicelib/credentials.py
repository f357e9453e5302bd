"""What the settings' secrets hold: the database's conninfo, the admin token, the providers'
settings. Each is read from its environment variable first, else from Secrets Manager.
"""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import make_conninfo

from chalicelib.aws import AwsClients
from chalicelib.config import Settings
from chalicelib.errors import ConfigurationError
from chalicelib.secrets import SecretStore


def resolve_conninfo(settings: Settings, secrets: SecretStore | None = None) -> str:
    """The PostgreSQL conninfo: DATABASE_URL, else the RDS-style secret SECRET_NAME (+DB_NAME)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    if settings.secret_name is None:
        raise ConfigurationError("DATABASE_URL or SECRET_NAME must be set")
    store = secrets or SecretStore(AwsClients(settings).secretsmanager)
    secret = store.get_json(settings.secret_name)
    missing = [k for k in ("host", "username", "password") if not secret.get(k)]
    if missing:
        raise ConfigurationError(f"Secret SECRET_NAME lacks {', '.join(missing)}")
    return make_conninfo(
        host=str(secret["host"]),
        port=str(secret.get("port", 5432)),
        user=str(secret["username"]),
        password=str(secret["password"]),
        dbname=settings.db_name or str(secret.get("dbname", "postgres")),
        sslmode=str(secret.get("sslmode", "prefer")),
    )


def resolve_admin_token(settings: Settings, secrets: SecretStore) -> str:
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    if settings.admin_secret_name is None:
        raise ConfigurationError("ADMIN_TOKEN or ADMIN_SECRET_NAME must be set")
    raw = secrets.get_string(settings.admin_secret_name)
    token = raw.strip()
    if token.startswith("{"):
        token = str(secrets.get_json(settings.admin_secret_name).get("token", ""))
    if len(token) < 16:
        raise ConfigurationError("ADMIN_SECRET_NAME must hold a token of at least 16 characters")
    return token


def provider_secrets(settings: Settings, secrets: SecretStore) -> dict[str, Any]:
    """Provider settings from the PROVIDER_SECRET_NAME secret (keys as env var names)."""
    if settings.provider_secret_name is None:
        return {}
    values = secrets.get_json(settings.provider_secret_name)
    return {str(key).lower(): value for key, value in values.items()}
