"""API key management and authentication: the business rules, no SQL and no SDK.

A key is ``ak_`` + 32 random bytes (URL-safe base64), shown once. Only its SHA-256 is
stored: the key carries 256 bits of entropy, so a fast hash is as strong as a slow one and
keeps authentication to one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from chalicelib.errors import (
    ConflictError,
    NotFoundError,
    RateLimitedError,
    RequestValidationError,
    UnauthorizedError,
)
from chalicelib.repositories.api_keys import ApiKeyRecord, ApiKeyRepository, Origin
from chalicelib.repositories.key_limits import KeyLimitRepository
from chalicelib.services.key_policy import KeyKind, KeyPolicy, PolicyDefaults, Refusal, refuse
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
    kind: KeyKind = "browser"
    policy: KeyPolicy = field(default_factory=KeyPolicy)
    client_ip: str | None = None


@dataclass(frozen=True)
class KeyDetails:
    """A key as the admin sees it: the record, its policy with defaults, today's count."""

    record: ApiKeyRecord
    policy: KeyPolicy
    recipients_today: int


class ApiKeyService:
    def __init__(
        self,
        repository: ApiKeyRepository,
        limits: KeyLimitRepository | None = None,
        defaults: PolicyDefaults | None = None,
        *,
        captcha_configured: bool = False,
    ) -> None:
        self._keys = repository
        self._limits = limits
        self._defaults = defaults or PolicyDefaults(
            max_recipients=10_000, browser_daily_quota=10_000, browser_per_ip_per_minute=60
        )
        self._captcha_configured = captcha_configured

    def create(
        self,
        *,
        name: str,
        origin_names: list[str],
        expires_at: datetime | None,
        mode: KeyMode = "live",
        kind: KeyKind = "browser",
        allowed_ips: list[str] | None = None,
        policy: dict[str, Any] | None = None,
    ) -> NewApiKey:
        """A new key. A ``test`` key's emails go through everything but only to the simulator.

        ``policy`` holds the fields the request set (``None`` values: the default)."""
        stored = {name: value for name, value in (policy or {}).items() if value is not None}
        self._check_captcha_possible(stored, ("policy",))
        api_key = generate_key(mode)
        record = self._keys.create(
            name=name,
            key_hash=hash_key(api_key),
            origin_names=origin_names,
            expires_at=expires_at,
            mode=mode,
            kind=kind,
            allowed_ips=allowed_ips,
            policy=stored,
        )
        return NewApiKey(api_key=api_key, record=record)

    def details(self, key_or_id: str) -> KeyDetails:
        return self._details(self._resolve(key_or_id))

    def update(
        self,
        key_or_id: str,
        *,
        policy_changes: dict[str, Any] | None,
        allowed_ips: list[str] | None,
    ) -> KeyDetails:
        """Change a key's policy (and a server key's ``allowed_ips``). Every instance reads
        the key on each request, so the change holds on the next request anywhere."""
        record = self._resolve(key_or_id)
        if allowed_ips is not None and record.kind != "server":
            raise ConflictError(
                "allowed_ips is for server keys; this is a browser key (its callers are"
                " browsers, whose addresses are anyone's)",
                details=[_invalid(("allowed_ips",), "allowed_ips is for server keys", allowed_ips)],
            )
        self._check_captcha_possible(policy_changes or {}, ("policy",))
        updated = self._keys.update(
            record.id, policy_changes=policy_changes, allowed_ips=allowed_ips
        )
        if updated is None:
            raise NotFoundError("API key not found")
        return self._details(updated)

    def policy_of(self, record: ApiKeyRecord) -> KeyPolicy:
        kind: KeyKind = "server" if record.kind == "server" else "browser"
        return KeyPolicy.resolve(kind, record.policy, self._defaults)

    def _details(self, record: ApiKeyRecord) -> KeyDetails:
        today = self._limits.recipients_today(record.id) if self._limits else 0
        return KeyDetails(record=record, policy=self.policy_of(record), recipients_today=today)

    def _check_captcha_possible(self, policy: dict[str, Any], loc: tuple[str, ...]) -> None:
        if policy.get("require_captcha") and not self._captcha_configured:
            raise RequestValidationError(
                [
                    _invalid(
                        (*loc, "require_captcha"),
                        "no CAPTCHA provider is configured (CAPTCHA_PROVIDER)",
                        True,
                    )
                ],
                message="require_captcha needs a CAPTCHA provider",
            )

    def check_client_ip(self, caller: Caller) -> None:
        """Count the request against the key's per-IP limit; 429 when the IP is over it (a
        refused request is not counted)."""
        limit = caller.policy.per_ip_per_minute
        if limit is None or caller.client_ip is None or self._limits is None:
            return
        window = self._limits.hit_ip(caller.key_id, caller.client_ip, limit)
        if window.hits is None:
            raise RateLimitedError(
                f"More than {limit} requests per minute from this IP address for this API key",
                retry_after_seconds=max(1, math.ceil(window.seconds_left)),
            )

    def delete(self, key_or_id: str) -> None:
        record = self._resolve(key_or_id)
        if not self._keys.soft_delete(record.id):
            raise NotFoundError("API key not found")

    def add_origins(self, key_or_id: str, origin_names: list[str]) -> list[Origin]:
        record = self._resolve(key_or_id)
        if record.kind == "server":
            raise ConflictError(
                "a server key has no origins: it is refused with any Origin (use a browser key"
                " for pages)"
            )
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

    def authenticate(
        self, api_key: str | None, origin_header: str | None, client_ip: str | None = None
    ) -> Caller:
        """The caller behind ``x-api-key`` (+ ``Origin`` for a browser key), or an error.

        Unknown, inactive, expired and deleted keys and disallowed origins all get the same
        401, so the answer never tells whether a key exists. A server key used with an
        ``Origin`` (from a page), or from an address outside its ``allowed_ips``, is a 403.
        """
        if not api_key:
            raise UnauthorizedError("Missing x-api-key header")
        record = self._keys.find_by_hash(hash_key(api_key))
        if record is not None and _usable(record) and record.kind == "server":
            return self._server_caller(record, origin_header, client_ip)
        origin = parse_request_origin(origin_header)
        if origin is None:
            raise UnauthorizedError("Missing or invalid Origin header")
        if record is None or not _usable(record) or not _allows(record, origin):
            raise UnauthorizedError(_KEY_OR_ORIGIN)
        return Caller(
            key_id=record.id,
            key_name=record.name,
            origin=origin_header or "",
            test_mode=record.mode == "test",
            kind="browser",
            policy=self.policy_of(record),
            client_ip=client_ip,
        )

    def _server_caller(
        self, record: ApiKeyRecord, origin_header: str | None, client_ip: str | None
    ) -> Caller:
        if origin_header is not None and origin_header.strip():
            refuse(
                [
                    Refusal(
                        ("Origin",),
                        "a server key is for backends: it is refused from a browser (the"
                        " request carries an Origin); use a browser key in pages",
                    )
                ]
            )
        if record.allowed_ips and not ip_allowed(record.allowed_ips, client_ip):
            refuse([Refusal(("sourceIp",), f"{client_ip} is not an allowed address for this key")])
        return Caller(
            key_id=record.id,
            key_name=record.name,
            origin="",
            test_mode=record.mode == "test",
            kind="server",
            policy=self.policy_of(record),
            client_ip=client_ip,
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


def ip_allowed(networks: tuple[str, ...], client_ip: str | None) -> bool:
    """True when ``client_ip`` (API Gateway's sourceIp, the local server's peer) is in one of
    ``networks``. Never taken from X-Forwarded-For, which any client writes."""
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def seconds_until_utc_midnight(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((midnight - now).total_seconds()))


def _invalid(loc: tuple[str, ...], msg: str, value: Any) -> dict[str, Any]:
    return {"type": "value_error", "loc": list(loc), "msg": msg, "input": value}


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
