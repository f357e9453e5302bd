"""The suppression list, read and changed by the admin."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import container
from chalicelib.controllers import suppressions
from chalicelib.http.context import RequestContext
from chalicelib.http.routing import Auth, RouteGroup
from chalicelib.models.lifecycle import (
    AddSuppressionsRequest,
    SuppressionDeleted,
    SuppressionList,
    SuppressionQuery,
    SuppressionsAdded,
)

routes = RouteGroup()


@routes.route(
    "/v1/suppressions",
    "GET",
    summary="The suppression list (paged), or one address",
    auth=Auth.ADMIN,
    query_model=SuppressionQuery,
    response_model=SuppressionList,
    error_statuses=(401, 422, 503),
)
def list_suppressions(ctx: RequestContext) -> Response:
    return suppressions.list_suppressions(ctx, container())


@routes.route(
    "/v1/suppressions",
    "POST",
    summary="Suppress addresses (reason manual)",
    auth=Auth.ADMIN,
    request_model=AddSuppressionsRequest,
    response_model=SuppressionsAdded,
    links={
        200: {
            "DeleteSuppression": (
                "delete_suppression",
                {"address": "$response.body#/data/added/0/address"},
            )
        }
    },
    error_statuses=(401, 413, 422, 503),
)
def add_suppressions(ctx: RequestContext) -> Response:
    return suppressions.add_suppressions(ctx, container())


@routes.route(
    "/v1/suppressions/{address}",
    "DELETE",
    summary="Remove an address from the suppression list",
    auth=Auth.ADMIN,
    response_model=SuppressionDeleted,
    error_statuses=(401, 404, 503),
)
def delete_suppression(ctx: RequestContext, address: str) -> Response:
    return suppressions.delete_suppression(ctx, container(), address)
