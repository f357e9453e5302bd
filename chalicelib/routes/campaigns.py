"""Campaigns (SPEC 13): create (with the upload), list, status, cancel."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.bootstrap import container
from chalicelib.controllers import campaigns
from chalicelib.http.context import RequestContext
from chalicelib.http.routing import Auth, RouteGroup
from chalicelib.models.campaigns import (
    CampaignCreated,
    CampaignData,
    CampaignList,
    CampaignsQuery,
    CreateCampaignRequest,
)

_CAMPAIGN_LINKS = {
    "GetCampaign": ("get_campaign", {"campaign_id": "$response.body#/data/campaign_id"}),
    "CancelCampaign": ("cancel_campaign", {"campaign_id": "$response.body#/data/campaign_id"}),
    "EmailStatus": ("get_email_status", {"email_id": "$response.body#/data/email_id"}),
}

routes = RouteGroup()


@routes.route(
    "/v1/campaigns",
    "POST",
    summary="Create a campaign: an email whose recipients come from an uploaded file",
    auth=Auth.API_KEY,
    request_model=CreateCampaignRequest,
    response_model=CampaignCreated,
    success_status=201,
    links={201: _CAMPAIGN_LINKS},
    error_statuses=(400, 401, 403, 404, 409, 413, 422, 429, 503),
)
def create_campaign(ctx: RequestContext) -> Response:
    return campaigns.create_campaign(ctx, container())


@routes.route(
    "/v1/campaigns",
    "GET",
    summary="The key's campaigns, newest first (paged)",
    auth=Auth.API_KEY,
    query_model=CampaignsQuery,
    response_model=CampaignList,
    error_statuses=(401, 422, 429, 503),
)
def list_campaigns(ctx: RequestContext) -> Response:
    return campaigns.list_campaigns(ctx, container())


@routes.route(
    "/v1/campaigns/{campaign_id}",
    "GET",
    summary="A campaign's status, row counts, recipients per status and first errors",
    auth=Auth.API_KEY,
    response_model=CampaignData,
    error_statuses=(401, 404, 429, 503),
)
def get_campaign(ctx: RequestContext, campaign_id: str) -> Response:
    return campaigns.get_campaign(ctx, container(), campaign_id)


@routes.route(
    "/v1/campaigns/{campaign_id}/cancel",
    "POST",
    summary="Cancel a campaign: rows not yet handed to a provider become cancelled",
    auth=Auth.API_KEY,
    response_model=CampaignData,
    error_statuses=(401, 404, 409, 429, 503),
)
def cancel_campaign(ctx: RequestContext, campaign_id: str) -> Response:
    return campaigns.cancel_campaign(ctx, container(), campaign_id)
