"""Stored template endpoints (SPEC 12): parse, call the service, shape ``data``."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import Container
from chalicelib.http.context import RequestContext
from chalicelib.http.responses import success
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
from chalicelib.repositories.templates import TemplateContent, TemplateVersion
from chalicelib.services.key_policy import Refusal, refuse


def create_template(ctx: RequestContext, services: Container) -> Response:
    saved = services.templates.create(_draft(ctx.body(TemplateRequest)))
    return success("Template created", template_out(saved), status=201)


def new_version(ctx: RequestContext, services: Container, template_id: str) -> Response:
    saved = services.templates.new_version(template_id, _draft(ctx.body(TemplateRequest)))
    return success("Template version created", template_out(saved))


def list_templates(ctx: RequestContext, services: Container) -> Response:
    query = ctx.query(PageQuery)
    page = services.templates.page(query.cursor, query.limit)
    return success(
        "Templates",
        TemplateList(
            templates=[template_out(t) for t in page.templates], next_cursor=page.next_cursor
        ),
    )


def get_template(ctx: RequestContext, services: Container, template_id: str) -> Response:
    query = ctx.query(TemplateVersionQuery)
    return success("Template", template_out(services.templates.get(template_id, query.version)))


def archive_template(ctx: RequestContext, services: Container, template_id: str) -> Response:
    services.templates.archive(template_id)
    return success("Template archived", TemplateArchived(template_id=template_id, archived=True))


def preview_template(ctx: RequestContext, services: Container, template_id: str) -> Response:
    body = ctx.body(PreviewRequest)
    if ctx.caller is not None:  # an API key: only the templates its policy allows
        allowed = ctx.caller.policy.template_ids
        if allowed is not None and template_id not in allowed:
            refuse([Refusal(("template_id",), "this key may not use this template")])
    rendered = services.templates.preview(
        template_id,
        params=body.params,
        recipient=body.recipient.model_dump(),
        version=body.version,
    )
    return success(
        "Template preview",
        TemplatePreview(subject=rendered.subject, html=rendered.html, text=rendered.text),
    )


def template_out(saved: TemplateVersion) -> TemplateOut:
    content = saved.content
    return TemplateOut(
        template_id=saved.template_id,
        name=content.name,
        version=saved.version,
        subject=content.subject,
        html=content.html,
        text=content.text,
        description=content.description,
        sample_params=content.sample_params,
        params=content.params,
        created_at=saved.created_at,
    )


def _draft(body: TemplateRequest) -> TemplateContent:
    """The template as the request gives it (the service finds the params it uses)."""
    return TemplateContent(
        name=body.name,
        subject=body.subject,
        html=body.html,
        text=body.text,
        description=body.description,
        sample_params=body.sample_params,
    )
