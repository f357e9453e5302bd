"""Database credentials and the admin token from Secrets Manager (moto over HTTP), read once."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import psycopg
import pytest
from botocore.config import Config
from chalice.test import Client
from psycopg.conninfo import conninfo_to_dict

from chalicelib.bootstrap import build_container, use_container
from chalicelib.config import Settings
from chalicelib.credentials import resolve_conninfo
from chalicelib.errors import ConfigurationError, ServiceUnavailableError
from chalicelib.secrets import SecretStore
from mmms_local import gateway
from tests.support.fake_providers import FakeProvider
from tests.support.http import call
from tests.support.moto_server import MotoServer
from tests.support.smtp_server import unused_port

ADMIN = "admin-token-from-secrets-manager"


@pytest.fixture
def secrets_manager(moto: MotoServer) -> object:
    return boto3.client("secretsmanager", endpoint_url=moto.endpoint_url, region_name=moto.region)


def rds_secret(database_url: str, **overrides: object) -> str:
    parts = conninfo_to_dict(database_url)
    return json.dumps(
        {
            "engine": "postgres",
            "host": parts.get("host", "127.0.0.1"),
            "port": int(parts.get("port", 5432)),
            "username": parts.get("user"),
            "password": parts.get("password") or "unused",
            "dbname": "not-this-one",
            **overrides,
        }
    )


def settings_from_secrets(moto: MotoServer, **values: object) -> Settings:
    return Settings(
        secret_name="mmms/db",
        admin_secret_name="mmms/admin",
        aws_endpoint_url=moto.endpoint_url,
        aws_region=moto.region,
        mail_queue_url="http://127.0.0.1:9/q",
        mail_result_queue_url="http://127.0.0.1:9/r",
        **values,
    )


@pytest.fixture
def app_from_secrets(
    moto: MotoServer, secrets_manager: object, clean_database: str
) -> Iterator[Client]:
    """The app with its admin token in Secrets Manager (the database secret: see below)."""
    secrets_manager.create_secret(Name="mmms/admin", SecretString=json.dumps({"token": ADMIN}))  # type: ignore[attr-defined]
    settings = Settings(
        database_url=clean_database,
        admin_secret_name="mmms/admin",
        aws_endpoint_url=moto.endpoint_url,
        aws_region=moto.region,
        mail_queue_url="http://127.0.0.1:9/q",
        mail_result_queue_url="http://127.0.0.1:9/r",
    )
    container = build_container(settings, sender=FakeProvider("fake"))
    use_container(container)
    gateway.install()
    import app

    with Client(app.app) as client:
        yield client
    use_container(None)
    container.close()


def test_conninfo_comes_from_the_rds_secret_with_db_name(
    moto: MotoServer, secrets_manager: object, clean_database: str
) -> None:
    secrets_manager.create_secret(Name="mmms/db", SecretString=rds_secret(clean_database))  # type: ignore[attr-defined]

    conninfo = resolve_conninfo(
        settings_from_secrets(moto, db_name="postgres", admin_token="x" * 20)
    )

    parts = conninfo_to_dict(conninfo)
    assert parts["dbname"] == "postgres"  # DB_NAME wins over the secret's dbname
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_admin_token_comes_from_its_secret(app_from_secrets: Client) -> None:
    created = call(
        app_from_secrets,
        "POST",
        "/v1/api-key",
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        body={"name": "k", "origin_names": ["example.com"]},
    )
    refused = call(
        app_from_secrets,
        "POST",
        "/v1/api-key",
        headers={
            "Authorization": "Bearer something-else-entirely",
            "Content-Type": "application/json",
        },
        body={"name": "k", "origin_names": ["example.com"]},
    )

    assert created.status == 200
    assert refused.status == 401


def test_secrets_are_read_once_per_process(moto: MotoServer, secrets_manager: object) -> None:
    secrets_manager.create_secret(Name="once", SecretString="first")  # type: ignore[attr-defined]
    store = SecretStore(
        lambda: boto3.client(
            "secretsmanager", endpoint_url=moto.endpoint_url, region_name=moto.region
        )
    )

    first = store.get_string("once")
    secrets_manager.put_secret_value(SecretId="once", SecretString="second")  # type: ignore[attr-defined]

    assert first == store.get_string("once") == "first"


def test_a_missing_secret_is_a_configuration_error_naming_it(moto: MotoServer) -> None:
    with pytest.raises(ConfigurationError, match="mmms/db"):
        resolve_conninfo(settings_from_secrets(moto, admin_token="x" * 20))


def store_on(moto: MotoServer) -> SecretStore:
    return SecretStore(
        lambda: boto3.client(
            "secretsmanager", endpoint_url=moto.endpoint_url, region_name=moto.region
        )
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("host=db user=mmms", "Secret 'mmms/db' is not JSON"),
        ('["host", "db"]', "Secret 'mmms/db' is not a JSON object"),
    ],
)
def test_a_secret_that_is_not_a_json_object_is_a_configuration_error(
    moto: MotoServer, secrets_manager: object, value: str, problem: str
) -> None:
    secrets_manager.create_secret(Name="mmms/db", SecretString=value)  # type: ignore[attr-defined]

    with pytest.raises(ConfigurationError) as raised:
        store_on(moto).get_json("mmms/db")

    assert raised.value.message == problem
    assert raised.value.status == 500  # a deployment mistake, not an outage


def test_a_binary_secret_is_a_configuration_error(
    moto: MotoServer, secrets_manager: object
) -> None:
    secrets_manager.create_secret(Name="mmms/db", SecretBinary=b"\x00\x01")  # type: ignore[attr-defined]

    with pytest.raises(ConfigurationError) as raised:
        store_on(moto).get_string("mmms/db")

    assert raised.value.message == "Secret 'mmms/db' has no SecretString"


def test_other_secrets_manager_errors_are_503_and_not_remembered(
    moto: MotoServer, secrets_manager: object
) -> None:
    secrets_manager.create_secret(Name="mmms/db", SecretString="{}")  # type: ignore[attr-defined]
    secrets_manager.delete_secret(SecretId="mmms/db")  # type: ignore[attr-defined]
    store = store_on(moto)

    with pytest.raises(ServiceUnavailableError) as raised:
        store.get_string("mmms/db")
    secrets_manager.restore_secret(SecretId="mmms/db")  # type: ignore[attr-defined]
    secrets_manager.put_secret_value(SecretId="mmms/db", SecretString='{"restored": 1}')  # type: ignore[attr-defined]

    # Marked for deletion: Secrets Manager's InvalidRequestException.
    assert raised.value.message == "Secrets Manager failed: InvalidRequestException"
    assert raised.value.status == 503
    assert store.get_string("mmms/db") == '{"restored": 1}'  # the failure was not cached


def test_secrets_manager_unreachable_is_503(moto: MotoServer) -> None:
    store = SecretStore(
        lambda: boto3.client(
            "secretsmanager",
            endpoint_url=f"http://127.0.0.1:{unused_port()}",
            region_name=moto.region,
            config=Config(retries={"total_max_attempts": 1}),
        )
    )

    with pytest.raises(ServiceUnavailableError) as raised:
        store.get_string("mmms/db")

    assert raised.value.message == "Secrets Manager is unreachable"
