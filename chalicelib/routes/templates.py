"""Stored templates: versions, reads, archive and preview."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import container
from chalicelib.controllers import templates
from chalicelib.http.context import RequestContext
from chalicelib.http.routing import Auth, RouteGroup
from chalicelib.models.lifecycle import PageQuery
from chalicelib.models.templates import (
    PreviewRequest,
    TemplateArchived,
    TemplateList,
    TemplateOut,
    TemplatePreview,
    TemplateRequest,
    TemplateVersionQuery,
)

_TEMPLATE_ID = "$response.body#/data/template_id"

routes = RouteGroup()


@routes.route(
    "/v1/templates",
    "POST",
    summary="Store a template (version 1), checked by rendering its sample_params",
    auth=Auth.ADMIN,
    request_model=TemplateRequest,
    response_model=TemplateOut,
    success_status=201,
    links={
        201: {
            "ShowTemplate": ("get_template", {"template_id": _TEMPLATE_ID}),
            "NewVersion": ("put_template", {"template_id": _TEMPLATE_ID}),
            "PreviewTemplate": ("preview_template", {"template_id": _TEMPLATE_ID}),
            "ArchiveTemplate": ("archive_template", {"template_id": _TEMPLATE_ID}),
        }
    },
    error_statuses=(401, 413, 422, 503),
)
def create_template(ctx: RequestContext) -> Response:
    return templates.create_template(ctx, container())


@routes.route(
    "/v1/templates",
    "GET",
    summary="Stored templates, latest versions (paged)",
    auth=Auth.ADMIN,
    query_model=PageQuery,
    response_model=TemplateList,
    error_statuses=(401, 422, 503),
)
def list_templates(ctx: RequestContext) -> Response:
    return templates.list_templates(ctx, container())


@routes.route(
    "/v1/templates/{template_id}",
    "GET",
    summary="A stored template (?version=n, default the latest)",
    auth=Auth.ADMIN,
    query_model=TemplateVersionQuery,
    response_model=TemplateOut,
    error_statuses=(401, 404, 422, 503),
)
def get_template(ctx: RequestContext, template_id: str) -> Response:
    return templates.get_template(ctx, container(), template_id)


@routes.route(
    "/v1/templates/{template_id}",
    "PUT",
    summary="A new version of a stored template (old versions stay, immutable)",
    auth=Auth.ADMIN,
    request_model=TemplateRequest,
    response_model=TemplateOut,
    error_statuses=(401, 404, 413, 422, 503),
)
def put_template(ctx: RequestContext, template_id: str) -> Response:
    return templates.new_version(ctx, container(), template_id)


@routes.route(
    "/v1/templates/{template_id}",
    "DELETE",
    summary="Archive a stored template (new sends get 404; queued mail still renders)",
    auth=Auth.ADMIN,
    response_model=TemplateArchived,
    error_statuses=(401, 404, 503),
)
def archive_template(ctx: RequestContext, template_id: str) -> Response:
    return templates.archive_template(ctx, container(), template_id)


@routes.route(
    "/v1/templates/{template_id}/preview",
    "POST",
    summary="Render a stored template (admin, or an API key allowed to use it)",
    auth=Auth.ADMIN_OR_API_KEY,
    request_model=PreviewRequest,
    response_model=TemplatePreview,
    error_statuses=(401, 403, 404, 413, 422, 429, 503),
)
def preview_template(ctx: RequestContext, template_id: str) -> Response:
    return templates.preview_template(ctx, container(), template_id)
