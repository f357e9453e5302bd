"""API key management and authentication: the business rules, no SQL and no SDK.

A key is ``ak_`` + 32 random bytes (URL-safe base64), shown once. Only its SHA-256 is
stored: the key carries 256 bits of entropy, so a fast hash is as strong as a slow one and
keeps authentication to one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from chalicelib.errors import NotFoundError, UnauthorizedError
from chalicelib.repositories.api_keys import ApiKeyRecord, ApiKeyRepository, Origin
from chalicelib.services.origins import RequestOrigin, origin_allowed, parse_request_origin

KEY_PREFIX = "ak_"
TEST_KEY_PREFIX = "ak_test_"
KEY_RANDOM_BYTES = 32
KeyMode = Literal["live", "test"]
_KEY_OR_ORIGIN = "Invalid API key or origin not allowed"


def hash_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode("utf-8")).digest()


def generate_key(mode: KeyMode = "live") -> str:
    prefix = TEST_KEY_PREFIX if mode == "test" else KEY_PREFIX
    return prefix + secrets.token_urlsafe(KEY_RANDOM_BYTES)


@dataclass(frozen=True)
class NewApiKey:
    """A freshly created key: the only moment the plain key exists."""

    api_key: str
    record: ApiKeyRecord


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a protected route."""

    key_id: uuid.UUID
    key_name: str
    origin: str
    test_mode: bool = False


class ApiKeyService:
    def __init__(self, repository: ApiKeyRepository) -> None:
        self._keys = repository

    def create(
        self,
        *,
        name: str,
        origin_names: list[str],
        expires_at: datetime | None,
        mode: KeyMode = "live",
    ) -> NewApiKey:
        """A new key. A ``test`` key's emails go through everything but only to the simulator."""
        api_key = generate_key(mode)
        record = self._keys.create(
            name=name,
            key_hash=hash_key(api_key),
            origin_names=origin_names,
            expires_at=expires_at,
            mode=mode,
        )
        return NewApiKey(api_key=api_key, record=record)

    def delete(self, key_or_id: str) -> None:
        record = self._resolve(key_or_id)
        if not self._keys.soft_delete(record.id):
            raise NotFoundError("API key not found")

    def add_origins(self, key_or_id: str, origin_names: list[str]) -> list[Origin]:
        record = self._resolve(key_or_id)
        return self._keys.add_origins(record.id, origin_names)

    def _resolve(self, key_or_id: str) -> ApiKeyRecord:
        """A live (not deleted) key, found by the key itself or by its key_id."""
        record: ApiKeyRecord | None = None
        if key_or_id.startswith(KEY_PREFIX):
            record = self._keys.find_by_hash(hash_key(key_or_id))
        else:
            try:
                record = self._keys.find_by_id(uuid.UUID(key_or_id))
            except ValueError:
                record = None
        if record is None or record.deleted_at is not None:
            raise NotFoundError("API key not found")
        return record

    def authenticate(self, api_key: str | None, origin_header: str | None) -> Caller:
        """The caller behind ``x-api-key`` + ``Origin``, or UnauthorizedError.

        Unknown, inactive, expired and deleted keys and disallowed origins all get the same
        answer, so the response never tells whether a key exists.
        """
        if not api_key:
            raise UnauthorizedError("Missing x-api-key header")
        origin = parse_request_origin(origin_header)
        if origin is None:
            raise UnauthorizedError("Missing or invalid Origin header")
        record = self._keys.find_by_hash(hash_key(api_key))
        if record is None or not _usable(record) or not _allows(record, origin):
            raise UnauthorizedError(_KEY_OR_ORIGIN)
        return Caller(
            key_id=record.id,
            key_name=record.name,
            origin=origin_header or "",
            test_mode=record.mode == "test",
        )

    def origin_registered(self, origin_header: str | None) -> bool:
        """True when some live key allows this Origin (used to answer CORS preflights)."""
        origin = parse_request_origin(origin_header)
        if origin is None:
            return False
        return self._keys.any_active_key_allows(candidate_origin_names(origin))


def candidate_origin_names(origin: RequestOrigin) -> list[str]:
    """Every allowed-origin name that would match ``origin`` (host, host:port, wildcards)."""
    names = [origin.host, f"{origin.host}:{origin.port}"]
    labels = origin.host.split(".")
    for index in range(1, len(labels) - 1):
        wildcard = "*." + ".".join(labels[index:])
        names += [wildcard, f"{wildcard}:{origin.port}"]
    return names


def _usable(record: ApiKeyRecord) -> bool:
    if not record.is_active or record.deleted_at is not None:
        return False
    return record.expires_at is None or record.expires_at > datetime.now(UTC)


def _allows(record: ApiKeyRecord, origin: RequestOrigin) -> bool:
    return origin_allowed([o.name for o in record.origins], origin)


class AdminAuthenticator:
    """Checks ``Authorization: Bearer <admin token>`` in constant time."""

    def __init__(self, admin_token: str) -> None:
        self._token = admin_token.encode("utf-8")

    def authenticate(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise UnauthorizedError("Missing admin bearer token")
        if not hmac.compare_digest(token.strip().encode("utf-8"), self._token):
            raise UnauthorizedError("Invalid admin token")
