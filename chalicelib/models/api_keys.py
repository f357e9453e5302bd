"""Request and response bodies of the API key endpoints (field names as in the seed).

A key has a ``kind`` (``browser``: the seed's keys, bound to origins; ``server``: for
backends, no origins, optionally bound to client IP ranges) and a ``policy`` that limits what
it may do whatever the Origin says (SPEC 12). Every pattern here is the one the service
checks, so the OpenAPI document and the service accept exactly the same values.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from chalicelib.models.common import (
    EMAIL_PATTERN,
    JSON_INTEGER,
    NOT_BLANK,
    RequestModel,
    UtcDatetime,
)
from chalicelib.models.templates import TemplateId
from chalicelib.services.origins import ORIGIN_NAME_PATTERN, normalize_origin_name

KeyKind = Literal["browser", "server"]
KeyMode = Literal["live", "test"]
MAX_RULES = 100
# A bound on what a key may ask for; the deployment's own limits apply on top.
MAX_POLICY_COUNT = 1_000_000_000

OriginName = Annotated[
    str,
    Field(min_length=1, max_length=253, json_schema_extra={"pattern": ORIGIN_NAME_PATTERN}),
    AfterValidator(normalize_origin_name),
]

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})+"
SENDER_RULE_PATTERN = rf"(?:{EMAIL_PATTERN.removeprefix('^').removesuffix('$')}|@{_DOMAIN})"
RECIPIENT_DOMAIN_PATTERN = rf"^(?:\*\.)?{_DOMAIN}$"

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_V4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H = r"[0-9A-Fa-f]{1,4}"
_V6 = (
    "(?:"
    rf"(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,7}}:|(?:{_H}:){{1,6}}:{_H}|"
    rf"(?:{_H}:){{1,5}}(?::{_H}){{1,2}}|(?:{_H}:){{1,4}}(?::{_H}){{1,3}}|"
    rf"(?:{_H}:){{1,3}}(?::{_H}){{1,4}}|(?:{_H}:){{1,2}}(?::{_H}){{1,5}}|"
    rf"{_H}:(?::{_H}){{1,6}}|:(?:(?::{_H}){{1,7}}|:)|(?:{_H}:){{6}}{_V4}|"
    rf"::(?:[Ff]{{4}}(?::0{{1,4}})?:)?{_V4}|(?:{_H}:){{1,4}}:{_V4}"
    ")"
)
# An IPv4 or IPv6 address or network; host bits are allowed (10.1.2.3/8 is 10.0.0.0/8).
CIDR_PATTERN = (
    rf"^(?:{_V4}(?:/(?:3[0-2]|[12]?[0-9]))?|{_V6}(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$"
)


def _sender_rule(value: str) -> str:
    if not re.fullmatch(SENDER_RULE_PATTERN, value):
        raise ValueError("an address (name@example.com) or a domain (@example.com)")
    return value.lower()


def _recipient_domain(value: str) -> str:
    if not re.fullmatch(RECIPIENT_DOMAIN_PATTERN, value):
        raise ValueError("a domain (example.org) or its subdomains (*.example.org)")
    return value.lower()


def _cidr(value: str) -> str:
    if not re.fullmatch(CIDR_PATTERN, value):
        raise ValueError("an IP address or network in CIDR notation (203.0.113.0/24)")
    return str(ipaddress.ip_network(value, strict=False))


# Taken as given (not stripped): the pattern the document states is the one checked.
_AS_GIVEN = StringConstraints(strip_whitespace=False, min_length=1, max_length=254)
SenderRule = Annotated[
    str,
    _AS_GIVEN,
    Field(json_schema_extra={"pattern": f"^{SENDER_RULE_PATTERN}$"}),
    AfterValidator(_sender_rule),
]
RecipientDomain = Annotated[
    str,
    _AS_GIVEN,
    Field(json_schema_extra={"pattern": RECIPIENT_DOMAIN_PATTERN}),
    AfterValidator(_recipient_domain),
]
Cidr = Annotated[
    str, _AS_GIVEN, Field(json_schema_extra={"pattern": CIDR_PATTERN}), AfterValidator(_cidr)
]


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _unique_or_none(names: list[str] | None) -> list[str] | None:
    return None if names is None else _unique(names)


PositiveCount = Annotated[int, Field(ge=1, le=MAX_POLICY_COUNT), JSON_INTEGER]


class KeyPolicyIn(RequestModel):
    """What a key may do (SPEC 12). Every field is optional; one left out (or ``null``)
    takes its default: any sender, any recipient domain, inline templates allowed, any stored
    template, the deployment's recipients per request, and for browser keys the deployment's
    daily quota and per-IP limit (server keys: none)."""

    allowed_senders: Annotated[list[SenderRule] | None, AfterValidator(_unique_or_none)] = Field(
        default=None,
        max_length=MAX_RULES,
        description="sender_email must be one of these addresses or @domains",
    )
    allowed_recipient_domains: Annotated[
        list[RecipientDomain] | None, AfterValidator(_unique_or_none)
    ] = Field(
        default=None,
        max_length=MAX_RULES,
        description="Every recipient, cc and bcc must be at one of these domains"
        " (*.example.org: its subdomains)",
    )
    inline_templates: StrictBool | None = Field(
        default=None,
        description="May send subject/html_template/text_template inline; false: template_id only",
    )
    template_ids: Annotated[list[TemplateId] | None, AfterValidator(_unique_or_none)] = Field(
        default=None, max_length=MAX_RULES, description="The stored templates this key may use"
    )
    max_recipients_per_request: PositiveCount | None = Field(
        default=None, description="A cap below the deployment's MAX_RECIPIENTS"
    )
    daily_recipient_quota: PositiveCount | None = Field(
        default=None, description="Recipients accepted per UTC day"
    )
    per_ip_per_minute: PositiveCount | None = Field(
        default=None, description="Requests per minute from one client IP"
    )
    require_captcha: StrictBool | None = Field(
        default=None, description="Every send needs X-Captcha-Token, verified server-side"
    )

    def given(self) -> dict[str, Any]:
        """The fields the request named (``null`` included: back to the default)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class KeyPolicyOut(BaseModel):
    """A key's policy with the defaults filled in; ``null`` means no restriction."""

    allowed_senders: list[str] | None
    allowed_recipient_domains: list[str] | None
    inline_templates: bool
    template_ids: list[str] | None
    max_recipients_per_request: int
    daily_recipient_quota: int | None
    per_ip_per_minute: int | None
    require_captcha: bool


def _kind_rules(schema: dict[str, Any]) -> None:
    """State the kind rules in the document: a browser key lists no allowed_ips, a server
    key no origin_names."""
    schema["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": "server"}}, "required": ["kind"]},
            "then": {"properties": {"origin_names": {"maxItems": 0}}},
            "else": {"properties": {"allowed_ips": {"maxItems": 0}}},
        }
    ]


class CreateApiKeyRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra=_kind_rules)

    name: str = Field(min_length=1, max_length=200, json_schema_extra={"pattern": NOT_BLANK})
    kind: KeyKind = Field(
        default="browser",
        description="browser: the request's Origin must be allowed; server: for backends, no"
        " origins, a request that carries an Origin is refused (403)",
    )
    origin_names: Annotated[list[OriginName], AfterValidator(_unique)] = Field(
        default_factory=list,
        max_length=100,
        description="Browser keys only (a server key takes none)",
    )
    allowed_ips: Annotated[list[Cidr], AfterValidator(_unique)] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        description="Server keys only: client addresses allowed (CIDR); empty: any",
    )
    expires_at: AwareDatetime | None = None
    mode: KeyMode = Field(
        default="live",
        description="test: an ak_test_ key whose emails only ever reach the simulator",
    )
    policy: KeyPolicyIn = Field(default_factory=KeyPolicyIn)

    @field_validator("expires_at")
    @classmethod
    def _in_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return value

    @model_validator(mode="after")
    def _kind_fits(self) -> CreateApiKeyRequest:
        if self.kind == "server" and self.origin_names:
            raise ValueError("a server key has no origin_names (it is refused with an Origin)")
        if self.kind == "browser" and self.allowed_ips:
            raise ValueError("allowed_ips is for server keys (a browser's IP is anyone's)")
        return self


class UpdateApiKeyRequest(RequestModel):
    """PATCH /v1/api-key/{api_key}: the policy fields given replace the key's (``null``: back
    to the default); ``allowed_ips`` (server keys) replaces the list when given."""

    policy: KeyPolicyIn | None = None
    allowed_ips: Annotated[list[Cidr], AfterValidator(_unique)] | None = Field(
        default=None, max_length=MAX_RULES
    )


class AddOriginsRequest(RequestModel):
    origin_names: Annotated[list[OriginName], AfterValidator(_unique)] = Field(
        min_length=1, max_length=100
    )


class OriginOut(BaseModel):
    name: str
    created_at: UtcDatetime


class ApiKeyDetails(BaseModel):
    """A key as GET /v1/api-key/{api_key} shows it: never the key or its hash."""

    key_id: str
    name: str
    kind: KeyKind
    mode: KeyMode
    is_active: bool
    origin_names: list[str]
    allowed_ips: list[str]
    policy: KeyPolicyOut
    created_at: UtcDatetime
    expires_at: UtcDatetime | None
    recipients_today: int = Field(description="Recipients accepted today (UTC)")


class ApiKeyCreated(ApiKeyDetails):
    """The new key: its details, the seed's ``origins``, and the key, shown once."""

    api_key: str = Field(description="Shown once; only its hash is stored.")
    origins: list[OriginOut]


class ApiKeyDeleted(BaseModel):
    deleted: bool
    api_key: str


class OriginsAdded(BaseModel):
    api_key: str
    added_origins: list[OriginOut]
