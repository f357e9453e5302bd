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
    CreateApiKeyRequest,
    OriginOut,
    OriginsAdded,
)


def create_api_key(ctx: RequestContext, services: Container) -> Response:
    body = ctx.body(CreateApiKeyRequest)
    new = services.api_keys.create(
        name=body.name, origin_names=body.origin_names, expires_at=body.expires_at, mode=body.mode
    )
    record = new.record
    return success(
        "API key created successfully",
        ApiKeyCreated(
            key_id=str(record.id),
            name=record.name,
            api_key=new.api_key,
            is_active=record.is_active,
            created_at=record.created_at,
            origins=[OriginOut(name=o.name, created_at=o.created_at) for o in record.origins],
            expires_at=record.expires_at,
        ),
    )


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
