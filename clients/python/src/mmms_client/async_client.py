"""``AsyncMmmsClient``: ``MmmsClient`` for asyncio; pages are iterated with ``async for``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from mmms_client import models as m
from mmms_client import routes, uploads
from mmms_client._core import Call, Settings, data_of, network_error
from mmms_client.errors import MmmsError

T = TypeVar("T")


class AsyncMmmsClient:
    """The same methods and arguments as ``MmmsClient``, awaited; ``async with`` closes it."""

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
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._http = httpx.AsyncClient(
            base_url=self.settings.base_url, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncMmmsClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, call: Call[T]) -> T:
        """Perform one call, retrying it when the rule allows; return the answer's ``data``."""
        attempt = 0
        while True:
            try:
                response = await self._http.request(
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
            await asyncio.sleep(wait)
            attempt += 1

    async def _pages(
        self, page: Callable[[str | None], Call[Any]], items: str
    ) -> AsyncIterator[Any]:
        cursor: str | None = None
        while True:
            data = await self.call(page(cursor))
            for item in data[items]:
                yield item
            cursor = data["next_cursor"]
            if not cursor:
                return

    async def health(self) -> str:
        return await self.call(routes.health())

    async def ready(self) -> str:
        return await self.call(routes.ready())

    async def openapi(self) -> dict[str, Any]:
        return await self.call(routes.openapi())

    async def send_mail(self, body: m.SendMailRequest) -> routes.SendResult:
        return await self.call(routes.send_mail(body))

    async def get_email(
        self,
        email_id: str,
        *,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> m.EmailStatusData:
        call = routes.get_email(email_id, status=status, limit=limit, cursor=cursor)
        return await self.call(call)

    def recipients(
        self, email_id: str, *, status: str | None = None, limit: int | None = None
    ) -> AsyncIterator[m.RecipientStatus]:
        """Every recipient of the email, page after page."""
        return self._pages(
            lambda cursor: routes.get_email(email_id, status=status, limit=limit, cursor=cursor),
            "recipients",
        )

    async def get_recipient(self, email_id: str, email_recipient_id: str) -> m.RecipientStatusData:
        return await self.call(routes.get_recipient(email_id, email_recipient_id))

    async def create_key(self, body: m.CreateApiKeyRequest) -> m.ApiKeyCreated:
        return await self.call(routes.create_key(body))

    async def delete_key(self, api_key: str) -> m.ApiKeyDeleted:
        return await self.call(routes.delete_key(api_key))

    async def add_origins(self, api_key: str, origin_names: list[str]) -> m.OriginsAdded:
        return await self.call(routes.add_origins(api_key, origin_names))

    async def get_key(self, api_key: str) -> m.ApiKeyDetails:
        return await self.call(routes.get_key(api_key))

    async def update_key(self, api_key: str, body: m.UpdateApiKeyRequest) -> m.ApiKeyDetails:
        return await self.call(routes.update_key(api_key, body))

    async def create_template(self, body: m.TemplateRequest) -> m.TemplateOut:
        return await self.call(routes.create_template(body))

    async def list_templates(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> m.TemplateList:
        return await self.call(routes.list_templates(limit=limit, cursor=cursor))

    def templates(self, *, limit: int | None = None) -> AsyncIterator[m.TemplateOut]:
        """The latest version of every stored template, page after page."""
        return self._pages(
            lambda cursor: routes.list_templates(limit=limit, cursor=cursor), "templates"
        )

    async def get_template(self, template_id: str, *, version: int | None = None) -> m.TemplateOut:
        return await self.call(routes.get_template(template_id, version=version))

    async def update_template(self, template_id: str, body: m.TemplateRequest) -> m.TemplateOut:
        """A new version (n+1) of the template; older versions stay. Never retried."""
        return await self.call(routes.update_template(template_id, body))

    async def delete_template(self, template_id: str) -> m.TemplateArchived:
        """Archive the template: new sends get 404, queued ones still render."""
        return await self.call(routes.delete_template(template_id))

    async def preview_template(
        self, template_id: str, body: m.PreviewRequest | None = None
    ) -> m.TemplatePreview:
        return await self.call(routes.preview_template(template_id, body))

    async def create_campaign(self, body: m.CreateCampaignRequest) -> m.CampaignCreated:
        return await self.call(routes.create_campaign(body))

    async def list_campaigns(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> m.CampaignList:
        return await self.call(routes.list_campaigns(limit=limit, cursor=cursor))

    def campaigns(self, *, limit: int | None = None) -> AsyncIterator[m.CampaignData]:
        """The key's campaigns, newest first, page after page."""
        return self._pages(
            lambda cursor: routes.list_campaigns(limit=limit, cursor=cursor), "campaigns"
        )

    async def get_campaign(self, campaign_id: str) -> m.CampaignData:
        return await self.call(routes.get_campaign(campaign_id))

    async def cancel_campaign(self, campaign_id: str) -> m.CampaignData:
        """Rows not yet handed to a provider become cancelled; a finished campaign is a 409."""
        return await self.call(routes.cancel_campaign(campaign_id))

    async def upload_campaign_file(
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
            response = await self._http.request(
                call.method, call.path, content=uploads.as_async(chunks), headers=headers
            )
        except httpx.TransportError as error:
            raise network_error(call, call.path, error) from error
        return data_of(response, call)

    async def wait_for_campaign(
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
            campaign = await self.get_campaign(campaign_id)
            if on_progress is not None:
                on_progress(campaign)
            if campaign["status"] in uploads.FINISHED:
                return campaign
            if deadline is not None and time.monotonic() + interval > deadline:
                message = f"Campaign {campaign_id} is still {campaign['status']}"
                raise MmmsError(status=0, error_type="timeout", message=message)
            await asyncio.sleep(interval)

    async def list_suppressions(
        self, *, address: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> m.SuppressionList:
        call = routes.list_suppressions(address=address, limit=limit, cursor=cursor)
        return await self.call(call)

    def suppressions(
        self, *, address: str | None = None, limit: int | None = None
    ) -> AsyncIterator[m.SuppressionOut]:
        """The whole suppression list (or one address), page after page."""
        return self._pages(
            lambda cursor: routes.list_suppressions(address=address, limit=limit, cursor=cursor),
            "suppressions",
        )

    async def add_suppressions(self, addresses: list[str]) -> m.SuppressionsAdded:
        return await self.call(routes.add_suppressions(addresses))

    async def remove_suppression(self, address: str) -> m.SuppressionDeleted:
        return await self.call(routes.remove_suppression(address))
