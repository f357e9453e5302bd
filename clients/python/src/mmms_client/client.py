"""``MmmsClient``: the API over httpx, one blocking call per method, each returning ``data``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from mmms_client import models as m
from mmms_client import routes, uploads
from mmms_client._core import Call, Settings, data_of, network_error
from mmms_client.errors import MmmsError

T = TypeVar("T")


class MmmsClient:
    """``MmmsClient(base_url, api_key, origin=..., admin_token=...)``; close it, or use ``with``.

    ``origin`` is sent as the ``Origin`` header (a browser key's requests need one);
    ``captcha_token`` as ``X-Captcha-Token``. Retries: see ``mmms_client._core``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        origin: str | None = None,
        admin_token: str | None = None,
        captcha_token: str | None = None,
        retries: int = 3,
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = Settings(
            base_url.rstrip("/"),
            api_key,
            origin,
            admin_token,
            captcha_token,
            retries,
            retry_delay,
            max_retry_delay,
            timeout,
        )
        self._http = httpx.Client(
            base_url=self.settings.base_url, timeout=timeout, transport=transport
        )

    def __enter__(self) -> MmmsClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def call(self, call: Call[T]) -> T:
        """Perform one call, retrying it when the rule allows; return the answer's ``data``."""
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.query(),
                    json=call.body,
                    headers=self.settings.headers(call),
                )
            except httpx.TransportError as error:
                wait = self.settings.wait_before_retry(call, attempt, None)
                if wait is None:
                    raise network_error(call, self.settings.base_url + call.path, error) from error
            else:
                wait = self.settings.wait_before_retry(call, attempt, response)
                if wait is None:
                    return data_of(response, call)
            time.sleep(wait)
            attempt += 1

    def _pages(self, page: Callable[[str | None], Call[Any]], items: str) -> Iterator[Any]:
        cursor: str | None = None
        while True:
            data = self.call(page(cursor))
            yield from data[items]
            cursor = data["next_cursor"]
            if not cursor:
                return

    def health(self) -> str:
        return self.call(routes.health())

    def ready(self) -> str:
        return self.call(routes.ready())

    def openapi(self) -> dict[str, Any]:
        return self.call(routes.openapi())

    def send_mail(self, body: m.SendMailRequest) -> routes.SendResult:
        return self.call(routes.send_mail(body))

    def get_email(
        self,
        email_id: str,
        *,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> m.EmailStatusData:
        return self.call(routes.get_email(email_id, status=status, limit=limit, cursor=cursor))

    def recipients(
        self, email_id: str, *, status: str | None = None, limit: int | None = None
    ) -> Iterator[m.RecipientStatus]:
        """Every recipient of the email, page after page."""
        return self._pages(
            lambda cursor: routes.get_email(email_id, status=status, limit=limit, cursor=cursor),
            "recipients",
        )

    def get_recipient(self, email_id: str, email_recipient_id: str) -> m.RecipientStatusData:
        return self.call(routes.get_recipient(email_id, email_recipient_id))

    def create_key(self, body: m.CreateApiKeyRequest) -> m.ApiKeyCreated:
        return self.call(routes.create_key(body))

    def delete_key(self, api_key: str) -> m.ApiKeyDeleted:
        return self.call(routes.delete_key(api_key))

    def add_origins(self, api_key: str, origin_names: list[str]) -> m.OriginsAdded:
        return self.call(routes.add_origins(api_key, origin_names))

    def get_key(self, api_key: str) -> m.ApiKeyDetails:
        return self.call(routes.get_key(api_key))

    def update_key(self, api_key: str, body: m.UpdateApiKeyRequest) -> m.ApiKeyDetails:
        return self.call(routes.update_key(api_key, body))

    def create_template(self, body: m.TemplateRequest) -> m.TemplateOut:
        return self.call(routes.create_template(body))

    def list_templates(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> m.TemplateList:
        return self.call(routes.list_templates(limit=limit, cursor=cursor))

    def templates(self, *, limit: int | None = None) -> Iterator[m.TemplateOut]:
        """The latest version of every stored template, page after page."""
        return self._pages(
            lambda cursor: routes.list_templates(limit=limit, cursor=cursor), "templates"
        )

    def get_template(self, template_id: str, *, version: int | None = None) -> m.TemplateOut:
        return self.call(routes.get_template(template_id, version=version))

    def update_template(self, template_id: str, body: m.TemplateRequest) -> m.TemplateOut:
        """A new version (n+1) of the template; older versions stay. Never retried."""
        return self.call(routes.update_template(template_id, body))

    def delete_template(self, template_id: str) -> m.TemplateArchived:
        """Archive the template: new sends get 404, queued ones still render."""
        return self.call(routes.delete_template(template_id))

    def preview_template(
        self, template_id: str, body: m.PreviewRequest | None = None
    ) -> m.TemplatePreview:
        return self.call(routes.preview_template(template_id, body))

    def create_campaign(self, body: m.CreateCampaignRequest) -> m.CampaignCreated:
        return self.call(routes.create_campaign(body))

    def list_campaigns(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> m.CampaignList:
        return self.call(routes.list_campaigns(limit=limit, cursor=cursor))

    def campaigns(self, *, limit: int | None = None) -> Iterator[m.CampaignData]:
        """The key's campaigns, newest first, page after page."""
        return self._pages(
            lambda cursor: routes.list_campaigns(limit=limit, cursor=cursor), "campaigns"
        )

    def get_campaign(self, campaign_id: str) -> m.CampaignData:
        return self.call(routes.get_campaign(campaign_id))

    def cancel_campaign(self, campaign_id: str) -> m.CampaignData:
        """Rows not yet handed to a provider become cancelled; a finished campaign is a 409."""
        return self.call(routes.cancel_campaign(campaign_id))

    def upload_campaign_file(
        self,
        campaign: Mapping[str, Any],
        file: uploads.FileLike,
        *,
        on_progress: uploads.Progress | None = None,
    ) -> Any:
        """Send the recipients' file where ``create_campaign`` said (see ``uploads``)."""
        target, headers, chunks = uploads.prepare(campaign, file, on_progress)
        call: Call[Any] = Call(str(target["method"]), str(target["url"]), auth="none")
        try:
            response = self._http.request(call.method, call.path, content=chunks, headers=headers)
        except httpx.TransportError as error:
            raise network_error(call, call.path, error) from error
        return data_of(response, call)

    def wait_for_campaign(
        self,
        campaign_id: str,
        *,
        interval: float = 2.0,
        timeout: float | None = None,
        on_progress: Callable[[m.CampaignData], None] | None = None,
    ) -> m.CampaignData:
        """Poll until the campaign is completed, cancelled or failed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            campaign = self.get_campaign(campaign_id)
            if on_progress is not None:
                on_progress(campaign)
            if campaign["status"] in uploads.FINISHED:
                return campaign
            if deadline is not None and time.monotonic() + interval > deadline:
                message = f"Campaign {campaign_id} is still {campaign['status']}"
                raise MmmsError(status=0, error_type="timeout", message=message)
            time.sleep(interval)

    def list_suppressions(
        self, *, address: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> m.SuppressionList:
        return self.call(routes.list_suppressions(address=address, limit=limit, cursor=cursor))

    def suppressions(
        self, *, address: str | None = None, limit: int | None = None
    ) -> Iterator[m.SuppressionOut]:
        """The whole suppression list (or one address), page after page."""
        return self._pages(
            lambda cursor: routes.list_suppressions(address=address, limit=limit, cursor=cursor),
            "suppressions",
        )

    def add_suppressions(self, addresses: list[str]) -> m.SuppressionsAdded:
        return self.call(routes.add_suppressions(addresses))

    def remove_suppression(self, address: str) -> m.SuppressionDeleted:
        return self.call(routes.remove_suppression(address))
