"""API key endpoints: parse the body, call the service, shape the seed's response."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import Container
from chalicelib.http.context import RequestContext
from chalicelib.http.responses import success
from chalicelib.models.api_keys import (
    AddOriginsRequest,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyDetails,
    CreateApiKeyRequest,
    KeyPolicyOut,
    OriginOut,
    OriginsAdded,
    UpdateApiKeyRequest,
)
from chalicelib.services.api_keys import KeyDetails


def create_api_key(ctx: RequestContext, services: Container) -> Response:
    body = ctx.body(CreateApiKeyRequest)
    new = services.api_keys.create(
        name=body.name,
        origin_names=body.origin_names,
        expires_at=body.expires_at,
        mode=body.mode,
        kind=body.kind,
        allowed_ips=body.allowed_ips,
        policy=body.policy.given(),
    )
    record = new.record
    details = _details(KeyDetails(record, services.api_keys.policy_of(record), recipients_today=0))
    return success(
        "API key created successfully",
        ApiKeyCreated(
            **details.model_dump(),
            api_key=new.api_key,
            origins=[OriginOut(name=o.name, created_at=o.created_at) for o in record.origins],
        ),
    )


def get_api_key(ctx: RequestContext, services: Container, api_key: str) -> Response:
    return success("API key", _details(services.api_keys.details(api_key)))


def update_api_key(ctx: RequestContext, services: Container, api_key: str) -> Response:
    body = ctx.body(UpdateApiKeyRequest)
    details = services.api_keys.update(
        api_key,
        policy_changes=body.policy.given() if body.policy is not None else None,
        allowed_ips=body.allowed_ips,
    )
    return success("API key updated successfully", _details(details))


def delete_api_key(ctx: RequestContext, services: Container, api_key: str) -> Response:
    services.api_keys.delete(api_key)
    return success("API key deleted successfully", ApiKeyDeleted(deleted=True, api_key=api_key))


def add_origins(ctx: RequestContext, services: Container, api_key: str) -> Response:
    body = ctx.body(AddOriginsRequest)
    origins = services.api_keys.add_origins(api_key, body.origin_names)
    return success(
        "Origins added to API key successfully",
        OriginsAdded(
            api_key=api_key,
            added_origins=[OriginOut(name=o.name, created_at=o.created_at) for o in origins],
        ),
    )


def _details(details: KeyDetails) -> ApiKeyDetails:
    record = details.record
    return ApiKeyDetails(
        key_id=str(record.id),
        name=record.name,
        kind="server" if record.kind == "server" else "browser",
        mode="test" if record.mode == "test" else "live",
        is_active=record.is_active,
        origin_names=[o.name for o in record.origins],
        allowed_ips=list(record.allowed_ips),
        policy=KeyPolicyOut(**details.policy.as_dict()),
        created_at=record.created_at,
        expires_at=record.expires_at,
        recipients_today=details.recipients_today,
    )
