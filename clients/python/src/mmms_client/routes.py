"""Every route of the API as a ``Call`` (SPEC section 2), built once for both clients.

The provider webhooks (``/v1/events/*``) are left out: providers call them, signed.
"""

from __future__ import annotations

from typing import Any

from mmms_client import models as m
from mmms_client._core import Call, segment

SendResult = m.SingleSendData | m.BulkAcceptedData


def health() -> Call[str]:
    return Call("GET", "/v1/health", auth="none")


def ready() -> Call[str]:
    return Call("GET", "/v1/health/ready", auth="none")


def openapi() -> Call[dict[str, Any]]:
    return Call("GET", "/v1/openapi.json", auth="none")


def send_mail(body: m.SendMailRequest) -> Call[SendResult]:
    # Idempotent by email_id: posting it again never sends it again (SPEC section 2).
    return Call("POST", "/v1/mail", body=body, idempotent=True)


def get_email(
    email_id: str, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
) -> Call[m.EmailStatusData]:
    params = {"status": status, "limit": limit, "cursor": cursor}
    return Call("GET", f"/v1/mail/{segment(email_id)}", params=params)


def get_recipient(email_id: str, email_recipient_id: str) -> Call[m.RecipientStatusData]:
    path = f"/v1/mail/{segment(email_id)}/recipients/{segment(email_recipient_id)}"
    return Call("GET", path)


def create_key(body: m.CreateApiKeyRequest) -> Call[m.ApiKeyCreated]:
    return Call("POST", "/v1/api-key", body=body, auth="admin")


def delete_key(api_key: str) -> Call[m.ApiKeyDeleted]:
    return Call("DELETE", f"/v1/api-key/{segment(api_key)}", auth="admin")


def add_origins(api_key: str, origin_names: list[str]) -> Call[m.OriginsAdded]:
    # Adding an origin twice is a no-op, so a retry is safe.
    body: m.AddOriginsRequest = {"origin_names": origin_names}
    path = f"/v1/api-key/{segment(api_key)}/origins"
    return Call("POST", path, body=body, auth="admin", idempotent=True)


def get_key(api_key: str) -> Call[m.ApiKeyDetails]:
    return Call("GET", f"/v1/api-key/{segment(api_key)}", auth="admin")


def update_key(api_key: str, body: m.UpdateApiKeyRequest) -> Call[m.ApiKeyDetails]:
    # Sets the fields it names: sending it twice leaves the same key, so a retry is safe.
    return Call("PATCH", f"/v1/api-key/{segment(api_key)}", body=body, auth="admin")


def create_template(body: m.TemplateRequest) -> Call[m.TemplateOut]:
    return Call("POST", "/v1/templates", body=body, auth="admin")


def list_templates(*, limit: int | None = None, cursor: str | None = None) -> Call[m.TemplateList]:
    return Call("GET", "/v1/templates", params={"limit": limit, "cursor": cursor}, auth="admin")


def get_template(template_id: str, *, version: int | None = None) -> Call[m.TemplateOut]:
    path = f"/v1/templates/{segment(template_id)}"
    return Call("GET", path, params={"version": version}, auth="admin")


def update_template(template_id: str, body: m.TemplateRequest) -> Call[m.TemplateOut]:
    # Each PUT makes a new version: never retried.
    path = f"/v1/templates/{segment(template_id)}"
    return Call("PUT", path, body=body, auth="admin", idempotent=False)


def delete_template(template_id: str) -> Call[m.TemplateArchived]:
    return Call("DELETE", f"/v1/templates/{segment(template_id)}", auth="admin")


def preview_template(
    template_id: str, body: m.PreviewRequest | None = None
) -> Call[m.TemplatePreview]:
    path = f"/v1/templates/{segment(template_id)}/preview"
    return Call("POST", path, body=body or {}, auth="any", idempotent=True)


def create_campaign(body: m.CreateCampaignRequest) -> Call[m.CampaignCreated]:
    return Call("POST", "/v1/campaigns", body=body)


def list_campaigns(*, limit: int | None = None, cursor: str | None = None) -> Call[m.CampaignList]:
    return Call("GET", "/v1/campaigns", params={"limit": limit, "cursor": cursor})


def get_campaign(campaign_id: str) -> Call[m.CampaignData]:
    return Call("GET", f"/v1/campaigns/{segment(campaign_id)}")


def cancel_campaign(campaign_id: str) -> Call[m.CampaignData]:
    # A second cancel is a 409: never retried.
    return Call("POST", f"/v1/campaigns/{segment(campaign_id)}/cancel")


def list_suppressions(
    *, address: str | None = None, limit: int | None = None, cursor: str | None = None
) -> Call[m.SuppressionList]:
    params = {"address": address, "limit": limit, "cursor": cursor}
    return Call("GET", "/v1/suppressions", params=params, auth="admin")


def add_suppressions(addresses: list[str]) -> Call[m.SuppressionsAdded]:
    body: m.AddSuppressionsRequest = {"addresses": addresses}
    return Call("POST", "/v1/suppressions", body=body, auth="admin", idempotent=True)


def remove_suppression(address: str) -> Call[m.SuppressionDeleted]:
    return Call("DELETE", f"/v1/suppressions/{segment(address)}", auth="admin")
