"""The suppression list's admin API: GET/POST /v1/suppressions, DELETE /v1/suppressions/{a}."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import Container
from chalicelib.http.context import RequestContext
from chalicelib.http.responses import success
from chalicelib.models.lifecycle import (
    AddSuppressionsRequest,
    SuppressionDeleted,
    SuppressionList,
    SuppressionOut,
    SuppressionQuery,
    SuppressionsAdded,
)
from chalicelib.repositories.suppressions import Suppression


def list_suppressions(ctx: RequestContext, services: Container) -> Response:
    query = ctx.query(SuppressionQuery)
    page = services.suppressions.page(address=query.address, cursor=query.cursor, limit=query.limit)
    return success(
        "Suppression list",
        SuppressionList(
            suppressions=[_out(entry) for entry in page.suppressions],
            next_cursor=page.next_cursor,
        ),
    )


def add_suppressions(ctx: RequestContext, services: Container) -> Response:
    body = ctx.body(AddSuppressionsRequest)
    added = services.suppressions.add(body.addresses, body.reason)
    return success(
        "Addresses suppressed", SuppressionsAdded(added=[_out(entry) for entry in added])
    )


def delete_suppression(ctx: RequestContext, services: Container, address: str) -> Response:
    services.suppressions.remove(address)
    return success(
        "Address removed from the suppression list",
        SuppressionDeleted(deleted=True, address=address.strip().lower()),
    )


def _out(entry: Suppression) -> SuppressionOut:
    return SuppressionOut(
        address=entry.address,
        reason=entry.reason,
        email_id=entry.email_id,
        detail=entry.detail,
        created_at=entry.created_at,
    )
