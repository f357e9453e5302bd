"""Settings: read once from the environment (and `.chalice/config.json` per stage on AWS).

Every setting is an environment variable named like the field in upper case. A missing or
invalid setting raises :class:`~chalicelib.errors.ConfigurationError` naming it, at start-up
(``bootstrap``), never halfway through a request.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chalicelib.errors import ConfigurationError


class Settings(BaseSettings):
    """The service's configuration. See the README's configuration table."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    stage: str = Field(default="dev", validation_alias="MMMS_STAGE")

    # Database: DATABASE_URL, or an RDS-style JSON secret in Secrets Manager (+ DB_NAME).
    database_url: SecretStr | None = None
    secret_name: str | None = None
    db_name: str | None = None
    db_pool_min_size: int = Field(default=0, ge=0)
    db_pool_max_size: int = Field(default=4, ge=1)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0)

    # Admin token for key management: ADMIN_TOKEN, or a secret named by ADMIN_SECRET_NAME.
    admin_token: SecretStr | None = None
    admin_secret_name: str | None = None

    cors_allow_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Provider credentials kept in Secrets Manager: a JSON object of provider settings
    # ({"SMTP_PASSWORD": "...", "SENDGRID_API_KEY": "..."}) that wins over the environment.
    provider_secret_name: str | None = None

    # Queues (bulk fan-out and status reports), and SES events (SNS → SQS). Without an events
    # queue, simulated events (test keys) are applied at once instead of queued.
    mail_queue_url: str | None = None
    mail_result_queue_url: str | None = None
    mail_events_queue_url: str | None = None

    # Provider webhooks: a route exists only when its key is set.
    mailgun_webhook_signing_key: SecretStr | None = None
    sendgrid_webhook_public_key: str | None = None
    webhook_max_age_seconds: float = Field(default=300.0, gt=0)
    webhook_max_events: int = Field(default=1000, ge=1)

    # AWS: region, and an endpoint for emulators (boto3 also reads AWS_ENDPOINT_URL itself).
    aws_region: str | None = Field(default=None, validation_alias="AWS_REGION")
    aws_default_region: str | None = None
    aws_endpoint_url: str | None = None

    # Limits.
    max_body_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    max_recipients: int = Field(default=10_000, gt=0)
    max_template_bytes: int = Field(default=512 * 1024, gt=0)
    max_attachment_bytes: int = Field(default=5 * 1024 * 1024, ge=0)
    queue_max_message_bytes: int = Field(default=262_144, gt=0, le=1_048_576)
    max_request_queue_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # Rendering (SPEC 11): the message, and what making it may cost (per request / message).
    max_message_bytes: int = Field(default=10 * 1024 * 1024, gt=0, le=40 * 1024 * 1024)
    max_render_operations: int = Field(default=500_000, gt=0)
    max_render_work_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    max_render_seconds: float = Field(default=10.0, gt=0)

    # Sending and retries.
    send_lease_seconds: float = Field(default=120.0, gt=0)
    mail_queue_max_receives: int = Field(default=5, ge=1)
    retry_base_delay_seconds: int = Field(default=30, ge=0)
    retry_max_delay_seconds: int = Field(default=900, ge=0, le=43_200)
    consumer_concurrency: int = Field(default=10, ge=1, le=100)
    # Recovery (the scheduled sweep): re-queue recipients whose message never reached the
    # queue after this long; fail those still without an outcome this long after queueing.
    redispatch_after_seconds: float = Field(default=120.0, gt=0)
    abandon_after_seconds: float = Field(default=6 * 3600.0, gt=0)

    # Campaigns (SPEC 13): files go to CAMPAIGN_BUCKET (S3, presigned PUT) on AWS; under
    # `make run` to CAMPAIGN_UPLOAD_DIR through the local server at CAMPAIGN_UPLOAD_URL.
    campaign_bucket: str | None = None
    campaign_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0, le=5 * 1024**3)
    campaign_upload_expires_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    campaign_upload_dir: str | None = None
    campaign_upload_url: str | None = None

    # Requests per API key per minute on API-key routes (429 beyond); 0 turns it off.
    rate_limit_per_minute: int = Field(default=600, ge=0)

    # Keys a browser can carry (SPEC 12): what a browser key's policy defaults to.
    browser_key_daily_quota: int = Field(default=10_000, ge=1)
    browser_key_per_ip_per_minute: int = Field(default=60, ge=1)
    # CAPTCHA for keys with require_captcha: the provider's siteverify form, and its secret
    # (CAPTCHA_SECRET, or a Secrets Manager secret named by CAPTCHA_SECRET_NAME).
    captcha_provider: Literal["turnstile", "hcaptcha", "recaptcha"] | None = None
    captcha_secret: SecretStr | None = None
    captcha_secret_name: str | None = None
    captcha_verify_url: str | None = None
    captcha_timeout_seconds: float = Field(default=5.0, gt=0, le=20)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _require_sources(self) -> Settings:
        if self.database_url is None and self.secret_name is None:
            raise ValueError("DATABASE_URL or SECRET_NAME must be set")
        if self.admin_token is None and self.admin_secret_name is None:
            raise ValueError("ADMIN_TOKEN or ADMIN_SECRET_NAME must be set")
        if self.admin_token is not None and len(self.admin_token.get_secret_value()) < 16:
            raise ValueError("ADMIN_TOKEN must be at least 16 characters")
        if not self.mail_queue_url:
            raise ValueError("MAIL_QUEUE_URL must be set")
        if not self.mail_result_queue_url:
            raise ValueError("MAIL_RESULT_QUEUE_URL must be set")
        if (
            self.mail_queue_max_receives * self.retry_max_delay_seconds
            >= self.abandon_after_seconds
        ):
            raise ValueError(
                "ABANDON_AFTER_SECONDS must exceed MAIL_QUEUE_MAX_RECEIVES x"
                " RETRY_MAX_DELAY_SECONDS, or recipients still being retried are reported failed"
            )
        if self.captcha_provider and not (self.captcha_secret or self.captcha_secret_name):
            raise ValueError("CAPTCHA_PROVIDER needs CAPTCHA_SECRET or CAPTCHA_SECRET_NAME")
        if (self.captcha_secret or self.captcha_secret_name) and not self.captcha_provider:
            raise ValueError("CAPTCHA_SECRET(_NAME) is set but CAPTCHA_PROVIDER is not")
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        return self

    @property
    def region(self) -> str:
        return self.aws_region or self.aws_default_region or "eu-central-1"


def load_settings() -> Settings:
    """Read the settings from the environment, or raise ConfigurationError naming the problem."""
    try:
        return Settings()
    except ValidationError as err:
        problems = "; ".join(_describe(error) for error in err.errors(include_url=False))
        raise ConfigurationError(f"Invalid configuration: {problems}") from err


def _describe(error: object) -> str:
    if not isinstance(error, dict):
        return str(error)
    location = ".".join(str(part).upper() for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid"))
    return f"{location}: {message}" if location else message
