"""Builds everything the app needs, once per process, on first use.

Nothing here runs at import time: a Lambda cold start pays only for what the first request
touches, and warm invocations reuse the same pool and clients. Tests build their own
:class:`Container` with :func:`build_container` and install it with :func:`use_container`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.aws import AwsClients
from chalicelib.config import Settings, load_settings
from chalicelib.credentials import provider_secrets, resolve_admin_token, resolve_conninfo
from chalicelib.db import Database
from chalicelib.errors import ConfigurationError
from chalicelib.logs import configure_logging
from chalicelib.providers.factory import (
    build_provider_chain,
    build_test_sender,
    configured_send_rates,
    load_provider_settings,
)
from chalicelib.queues.base import ProcessingQueue, ResultQueue
from chalicelib.queues.sqs import SqsProcessingQueue, SqsResultQueue
from chalicelib.repositories.api_keys import ApiKeyRepository
from chalicelib.repositories.campaigns import CampaignRepository
from chalicelib.repositories.deliveries import DeliveryRepository
from chalicelib.repositories.delivery_events import DeliveryEventRepository
from chalicelib.repositories.delivery_status import DeliveryStatusRepository
from chalicelib.repositories.key_limits import KeyLimitRepository
from chalicelib.repositories.rate_limits import RateLimitRepository
from chalicelib.repositories.send_leases import SendLeaseRepository
from chalicelib.repositories.send_rate import SendSlotRepository
from chalicelib.repositories.suppressions import SuppressionRepository, WebhookTokenRepository
from chalicelib.repositories.templates import TemplateRepository
from chalicelib.secrets import SecretStore
from chalicelib.services.api_keys import AdminAuthenticator, ApiKeyService
from chalicelib.services.campaign_processing import CampaignProcessor
from chalicelib.services.campaigns import CampaignLimits, CampaignService
from chalicelib.services.consumer import QueueConsumer, RetryPolicy
from chalicelib.services.delivery import DeliveryService
from chalicelib.services.events import EventService, InlineEvents
from chalicelib.services.key_policy import PolicyDefaults, SendGate
from chalicelib.services.mail import MailLimits, MailService
from chalicelib.services.rate_limit import RateLimiter
from chalicelib.services.recovery import RecoveryService
from chalicelib.services.render_budget import RenderBudget
from chalicelib.services.send_rate import SendRateGovernor
from chalicelib.services.sending import MailSender
from chalicelib.services.status import StatusService
from chalicelib.services.stored_templates import StoredTemplateService
from chalicelib.services.suppressions import SuppressionService
from chalicelib.services.webhooks import WebhookKeys, WebhookService
from chalicelib.uploads.base import UploadStore

if TYPE_CHECKING:
    from chalicelib.captcha import SiteverifyCaptcha


@dataclass
class Container:
    settings: Settings
    database: Database
    api_keys: ApiKeyService
    admin: AdminAuthenticator
    sender: MailSender
    processing_queue: ProcessingQueue
    result_queue: ResultQueue
    deliveries: DeliveryRepository
    leases: SendLeaseRepository
    delivery_status: DeliveryStatusRepository
    delivery: DeliveryService
    mail: MailService
    consumer: QueueConsumer
    recovery: RecoveryService
    rate_limiter: RateLimiter
    suppressions: SuppressionService
    events: EventService
    events_queue: ProcessingQueue | None
    status: StatusService
    webhooks: WebhookService
    webhook_tokens: WebhookTokenRepository
    key_limits: KeyLimitRepository
    send_gate: SendGate
    templates: StoredTemplateService
    campaigns: CampaignService
    campaign_processor: CampaignProcessor
    upload_store: UploadStore | None

    def close(self) -> None:
        self.delivery.close()
        close = getattr(self.sender, "close", None)
        if callable(close):
            close()
        self.database.close()


def render_budget(settings: Settings) -> RenderBudget:
    return RenderBudget(
        max_message_bytes=settings.max_message_bytes,
        max_operations=settings.max_render_operations,
        max_work_bytes=settings.max_render_work_bytes,
        max_seconds=settings.max_render_seconds,
    )


def captcha_verifier(settings: Settings, secrets: SecretStore) -> SiteverifyCaptcha | None:
    """The CAPTCHA verifier of CAPTCHA_PROVIDER; its secret is read on first use."""
    if settings.captcha_provider is None:
        return None
    from chalicelib.captcha import VERIFY_URLS, SiteverifyCaptcha

    secret, secret_name = settings.captcha_secret, settings.captcha_secret_name

    def read_secret() -> str:
        if secret is not None:
            return secret.get_secret_value()
        return secrets.get_string(str(secret_name)).strip()

    return SiteverifyCaptcha(
        settings.captcha_provider,
        settings.captcha_verify_url or VERIFY_URLS[settings.captcha_provider],
        read_secret,
        timeout_seconds=settings.captcha_timeout_seconds,
    )


def policy_defaults(settings: Settings) -> PolicyDefaults:
    return PolicyDefaults(
        max_recipients=settings.max_recipients,
        browser_daily_quota=settings.browser_key_daily_quota,
        browser_per_ip_per_minute=settings.browser_key_per_ip_per_minute,
    )


def webhook_keys(settings: Settings) -> WebhookKeys:
    public_key = None
    if settings.sendgrid_webhook_public_key:
        from chalicelib.events.sendgrid import load_public_key

        try:
            public_key = load_public_key(settings.sendgrid_webhook_public_key)
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
    signing_key = settings.mailgun_webhook_signing_key
    return WebhookKeys(
        mailgun_signing_key=signing_key.get_secret_value() if signing_key else None,
        sendgrid_public_key=public_key,
        max_age_seconds=settings.webhook_max_age_seconds,
        max_events=settings.webhook_max_events,
    )


def build_container(
    settings: Settings,
    *,
    sender: MailSender | None = None,
    processing_queue: ProcessingQueue | None = None,
    result_queue: ResultQueue | None = None,
    events_queue: ProcessingQueue | None = None,
) -> Container:
    """Wire everything from ``settings``; tests and the local runner may pass their own parts."""
    configure_logging(settings.log_level)
    aws = AwsClients(settings)
    secrets = SecretStore(aws.secretsmanager)
    database = Database(
        resolve_conninfo(settings, secrets),
        min_size=settings.db_pool_min_size,
        max_size=max(settings.db_pool_max_size, settings.consumer_concurrency // 2),
        timeout_seconds=settings.db_connect_timeout_seconds,
    )
    keys = webhook_keys(settings)
    provider_settings = load_provider_settings(**provider_secrets(settings, secrets))
    if sender is None:
        governor = SendRateGovernor(
            SendSlotRepository(database),
            configured_send_rates(provider_settings),
            max_wait_seconds=provider_settings.send_rate_max_wait_seconds,
        )
        sender = build_provider_chain(
            provider_settings,
            ses_client_factory=lambda: aws.client("sesv2"),
            ses_quota_client_factory=lambda: aws.client("ses"),
            pace=governor.pace,
        )
    processing = processing_queue or SqsProcessingQueue(aws.sqs, str(settings.mail_queue_url))
    results = result_queue or SqsResultQueue(aws.sqs, str(settings.mail_result_queue_url))
    if events_queue is None and settings.mail_events_queue_url:
        events_queue = SqsProcessingQueue(aws.sqs, settings.mail_events_queue_url)
    inline_events = InlineEvents()
    deliveries = DeliveryRepository(database)
    leases = SendLeaseRepository(database)
    delivery_status = DeliveryStatusRepository(database)
    suppressions = SuppressionService(SuppressionRepository(database))
    delivery = DeliveryService(
        deliveries,
        leases,
        sender,
        results,
        processing,
        lease_seconds=settings.send_lease_seconds,
        test_sender=build_test_sender(provider_settings),
        events=events_queue or inline_events,
        render_budget=render_budget(settings),
        concurrency=settings.consumer_concurrency,
    )
    events = EventService(DeliveryEventRepository(database), suppressions, delivery)
    inline_events.bind(events)
    webhook_tokens = WebhookTokenRepository(database)
    key_limits = KeyLimitRepository(database)
    captcha = captcha_verifier(settings, secrets)
    stored_templates = StoredTemplateService(
        TemplateRepository(database), render_budget(settings), settings.max_template_bytes
    )
    limits = mail_limits(settings)
    mail = MailService(
        deliveries, delivery, processing, limits, suppressions, templates=stored_templates
    )
    store = upload_store(settings, aws)
    campaign_repo = CampaignRepository(database)
    processor = CampaignProcessor(
        campaign_repo,
        deliveries,
        delivery,
        processing,
        store,
        max_bytes=settings.campaign_max_bytes,
    )
    campaigns = CampaignService(
        campaign_repo,
        deliveries,
        mail,
        processor,
        store=store,
        mail_limits=limits,
        limits=CampaignLimits(
            max_bytes=settings.campaign_max_bytes,
            upload_expires_seconds=settings.campaign_upload_expires_seconds,
        ),
    )
    return Container(
        settings=settings,
        database=database,
        api_keys=ApiKeyService(
            ApiKeyRepository(database),
            key_limits,
            policy_defaults(settings),
            captcha_configured=captcha is not None,
        ),
        admin=AdminAuthenticator(resolve_admin_token(settings, secrets)),
        sender=sender,
        processing_queue=processing,
        result_queue=results,
        deliveries=deliveries,
        leases=leases,
        delivery_status=delivery_status,
        delivery=delivery,
        mail=mail,
        consumer=QueueConsumer(
            deliveries,
            delivery,
            RetryPolicy(
                max_receives=settings.mail_queue_max_receives,
                base_delay_seconds=settings.retry_base_delay_seconds,
                max_delay_seconds=settings.retry_max_delay_seconds,
            ),
            chunks=campaigns.chunk_jobs,
        ),
        recovery=RecoveryService(
            deliveries,
            processing,
            delivery,
            redispatch_after_seconds=settings.redispatch_after_seconds,
            abandon_after_seconds=settings.abandon_after_seconds,
        ),
        rate_limiter=RateLimiter(RateLimitRepository(database), settings.rate_limit_per_minute),
        suppressions=suppressions,
        events=events,
        events_queue=events_queue,
        status=StatusService(delivery_status),
        webhooks=WebhookService(events, webhook_tokens, keys),
        webhook_tokens=webhook_tokens,
        key_limits=key_limits,
        send_gate=SendGate(captcha, max_recipients=settings.max_recipients),
        templates=stored_templates,
        campaigns=campaigns,
        campaign_processor=processor,
        upload_store=store,
    )


def mail_limits(settings: Settings) -> MailLimits:
    return MailLimits(
        max_recipients=settings.max_recipients,
        max_template_bytes=settings.max_template_bytes,
        max_attachment_bytes=settings.max_attachment_bytes,
        max_queue_message_bytes=settings.queue_max_message_bytes,
        max_request_queue_bytes=settings.max_request_queue_bytes,
        redispatch_after_seconds=settings.redispatch_after_seconds,
        render=render_budget(settings),
    )


def upload_store(settings: Settings, aws: AwsClients) -> UploadStore | None:
    """Where campaign files go: the S3 bucket, else the local folder (``make run``), else
    nowhere (creating a campaign is then a 503 naming the setting)."""
    if settings.campaign_bucket:
        from chalicelib.uploads.s3 import S3UploadStore

        return S3UploadStore(lambda: aws.client("s3"), settings.campaign_bucket)
    if settings.campaign_upload_dir and settings.campaign_upload_url:
        from chalicelib.uploads.local import LocalUploadStore

        folder = Path(settings.campaign_upload_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return LocalUploadStore(folder, settings.campaign_upload_url)
    return None


_container: Container | None = None
_lock = threading.Lock()


def container() -> Container:
    """The process-wide container, built from the environment on first call."""
    global _container  # noqa: PLW0603 - the one process-wide singleton
    if _container is None:
        with _lock:
            if _container is None:
                _container = build_container(load_settings())
    return _container


def use_container(new: Container | None) -> None:
    """Install a container (tests, local runner), or None to build from settings again."""
    global _container  # noqa: PLW0603
    with _lock:
        _container = new
