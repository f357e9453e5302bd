"""API keys (SPEC 12): created, read, changed and deleted by the admin, origins added."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import container
from chalicelib.controllers import api_keys
from chalicelib.http.context import RequestContext
from chalicelib.http.routing import Auth, RouteGroup
from chalicelib.models.api_keys import (
    AddOriginsRequest,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyDetails,
    CreateApiKeyRequest,
    OriginsAdded,
    UpdateApiKeyRequest,
)

routes = RouteGroup()


@routes.route(
    "/v1/api-key",
    "POST",
    summary="Create an API key (shown once)",
    auth=Auth.ADMIN,
    request_model=CreateApiKeyRequest,
    response_model=ApiKeyCreated,
    links={
        200: {
            "AddOrigins": ("add_api_key_origins", {"api_key": "$response.body#/data/key_id"}),
            "DeleteKey": ("delete_api_key", {"api_key": "$response.body#/data/key_id"}),
            "ShowKey": ("get_api_key", {"api_key": "$response.body#/data/key_id"}),
            "UpdateKey": ("update_api_key", {"api_key": "$response.body#/data/key_id"}),
        }
    },
    error_statuses=(401, 413, 422, 503),
)
def create_api_key(ctx: RequestContext) -> Response:
    return api_keys.create_api_key(ctx, container())


@routes.route(
    "/v1/api-key/{api_key}",
    "GET",
    summary="An API key's metadata, policy (defaults filled in) and today's recipients",
    auth=Auth.ADMIN,
    response_model=ApiKeyDetails,
    error_statuses=(401, 404, 503),
)
def get_api_key(ctx: RequestContext, api_key: str) -> Response:
    return api_keys.get_api_key(ctx, container(), api_key)


@routes.route(
    "/v1/api-key/{api_key}",
    "PATCH",
    summary="Change an API key's policy (and a server key's allowed_ips)",
    auth=Auth.ADMIN,
    request_model=UpdateApiKeyRequest,
    response_model=ApiKeyDetails,
    error_statuses=(401, 404, 409, 413, 422, 503),
)
def update_api_key(ctx: RequestContext, api_key: str) -> Response:
    return api_keys.update_api_key(ctx, container(), api_key)


@routes.route(
    "/v1/api-key/{api_key}",
    "DELETE",
    summary="Delete an API key (by key or key_id)",
    auth=Auth.ADMIN,
    response_model=ApiKeyDeleted,
    error_statuses=(401, 404, 503),
)
def delete_api_key(ctx: RequestContext, api_key: str) -> Response:
    return api_keys.delete_api_key(ctx, container(), api_key)


@routes.route(
    "/v1/api-key/{api_key}/origins",
    "POST",
    summary="Allow more origins for an API key",
    auth=Auth.ADMIN,
    request_model=AddOriginsRequest,
    response_model=OriginsAdded,
    error_statuses=(401, 404, 409, 413, 422, 503),
)
def add_api_key_origins(ctx: RequestContext, api_key: str) -> Response:
    return api_keys.add_origins(ctx, container(), api_key)
