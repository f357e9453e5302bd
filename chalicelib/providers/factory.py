"""Provider settings (environment variables) and the chain they describe.

``MAIL_PROVIDERS`` is the ordered, comma-separated list of providers to try (default
``ses``); names: ``ses``, ``smtp``, ``mailgun``, ``sendgrid``, ``capture``. Each listed provider
must have its settings, checked at start-up; the error names the missing variable, e.g.
``MAIL_PROVIDERS includes smtp but SMTP_HOST is not set``.

==========================  ===============================================================
ses                         ``SES_CONFIGURATION_SET`` (optional); region and credentials are
                            the AWS client's (the caller's ``ses_client_factory``)
smtp                        ``SMTP_HOST`` (required), ``SMTP_PORT`` (587),
                            ``SMTP_SECURITY`` (starttls | ssl | none), ``SMTP_USERNAME`` +
                            ``SMTP_PASSWORD``, ``SMTP_TIMEOUT``
mailgun                     ``MAILGUN_API_KEY``, ``MAILGUN_DOMAIN`` (required),
                            ``MAILGUN_BASE_URL`` (``https://api.mailgun.net``; EU domains need
                            ``https://api.eu.mailgun.net``)
sendgrid                    ``SENDGRID_API_KEY`` (required), ``SENDGRID_BASE_URL``
capture                     ``CAPTURE_DIR`` (``.mmms/outbox``)
all                         ``PROVIDER_TIMEOUT_SECONDS`` (10), ``PROVIDER_FAILURE_THRESHOLD`` (3),
                            ``PROVIDER_COOLDOWN_SECONDS`` (30),
                            ``PROVIDER_THROTTLE_RETRIES`` (3),
                            ``PROVIDER_THROTTLE_BASE_DELAY_SECONDS`` (0.2),
                            ``<PROVIDER>_MAX_SEND_RATE`` (emails/s; SES: the account's),
                            ``SEND_RATE_MAX_WAIT_SECONDS`` (10)
==========================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chalicelib.errors import ConfigurationError
from chalicelib.providers.base import MailProvider
from chalicelib.providers.chain import ProviderChain

if TYPE_CHECKING:
    from chalicelib.providers.smtp import SmtpProvider

ProviderName = Literal["ses", "smtp", "mailgun", "sendgrid", "capture"]
PROVIDER_NAMES: tuple[str, ...] = get_args(ProviderName)


class ProviderSettings(BaseSettings):
    """The provider chain's configuration, one environment variable per field (no prefix)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    mail_providers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["ses"])

    ses_configuration_set: str | None = None

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_timeout: float | None = Field(default=None, gt=0)
    smtp_max_connections: int = Field(default=4, ge=1, le=50)

    mailgun_api_key: SecretStr | None = None
    mailgun_domain: str | None = None
    mailgun_base_url: str = "https://api.mailgun.net"

    sendgrid_api_key: SecretStr | None = None
    sendgrid_base_url: str = "https://api.sendgrid.com"

    capture_dir: Path = Path(".mmms/outbox")

    provider_timeout_seconds: float = Field(default=10.0, gt=0)
    provider_failure_threshold: int = Field(default=3, ge=1)
    provider_cooldown_seconds: float = Field(default=30.0, ge=0)
    # Maximum send rates (emails/s), shared by every instance; SES reads its own when unset.
    ses_max_send_rate: float | None = Field(default=None, gt=0)
    smtp_max_send_rate: float | None = Field(default=None, gt=0)
    mailgun_max_send_rate: float | None = Field(default=None, gt=0)
    sendgrid_max_send_rate: float | None = Field(default=None, gt=0)
    # Lambda allows the consumer 30 s and API Gateway 29 s: a slot wait plus a send must fit.
    send_rate_max_wait_seconds: float = Field(default=10.0, ge=0)
    provider_throttle_retries: int = Field(default=3, ge=0, le=10)
    provider_throttle_base_delay_seconds: float = Field(default=0.2, ge=0)

    @field_validator("mail_providers", mode="before")
    @classmethod
    def _split_providers(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _require_provider_settings(self) -> ProviderSettings:
        problems = [
            f"MAIL_PROVIDERS names unknown provider {name!r} (known: {', '.join(PROVIDER_NAMES)})"
            for name in self.mail_providers
            if name not in PROVIDER_NAMES
        ]
        if not self.mail_providers:
            problems.append("MAIL_PROVIDERS must name at least one provider")
        if len(set(self.mail_providers)) != len(self.mail_providers):
            problems.append("MAIL_PROVIDERS lists a provider twice")
        required: dict[str, dict[str, SecretStr | str | None]] = {
            "smtp": {"SMTP_HOST": self.smtp_host},
            "mailgun": {
                "MAILGUN_API_KEY": self.mailgun_api_key,
                "MAILGUN_DOMAIN": self.mailgun_domain,
            },
            "sendgrid": {"SENDGRID_API_KEY": self.sendgrid_api_key},
        }
        for provider in self.mail_providers:
            for setting, value in required.get(provider, {}).items():
                if value is None or not _secret_text(value):
                    problems.append(f"MAIL_PROVIDERS includes {provider} but {setting} is not set")
        if "smtp" in self.mail_providers and self.smtp_username and self.smtp_password is None:
            problems.append("SMTP_USERNAME is set but SMTP_PASSWORD is not set")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def load_provider_settings(**overrides: Any) -> ProviderSettings:
    """Read the settings from the environment, or raise ConfigurationError naming the problem.

    ``overrides`` (field names, e.g. from a Secrets Manager secret) win over the environment.
    """
    try:
        return ProviderSettings(**overrides)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p).upper() for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
            for e in err.errors(include_url=False)
        )
        raise ConfigurationError(f"Invalid provider configuration: {problems}") from err


def build_provider_chain(
    settings: ProviderSettings,
    *,
    ses_client_factory: Callable[[], Any],
    ses_quota_client_factory: Callable[[], Any] | None = None,
    pace: Callable[[MailProvider], object] = lambda _provider: None,
) -> ProviderChain:
    """The chain ``settings.mail_providers`` describes, in that order.

    ``ses_client_factory`` makes the boto3 ``sesv2`` client; it is called only when ``ses``
    is listed, so the other providers work without AWS configuration.
    """
    # Each provider module is imported only when listed: requests, smtplib and the SES
    # request builders stay off the Lambda cold path unless they are used.
    builders: dict[str, Callable[[], MailProvider]] = {
        "ses": lambda: _ses(settings, ses_client_factory, ses_quota_client_factory),
        "smtp": lambda: _smtp(settings),
        "mailgun": lambda: _mailgun(settings),
        "sendgrid": lambda: _sendgrid(settings),
        "capture": lambda: _capture(settings),
    }
    return ProviderChain(
        [builders[name]() for name in settings.mail_providers],
        failure_threshold=settings.provider_failure_threshold,
        cooldown_seconds=settings.provider_cooldown_seconds,
        throttle_retries=settings.provider_throttle_retries,
        throttle_base_delay=settings.provider_throttle_base_delay_seconds,
        pace=pace,
    )


def configured_send_rates(settings: ProviderSettings) -> dict[str, float]:
    """``<PROVIDER>_MAX_SEND_RATE`` of each provider that has one (emails/s)."""
    rates = {name: getattr(settings, f"{name}_max_send_rate", None) for name in PROVIDER_NAMES}
    return {name: rate for name, rate in rates.items() if rate is not None}


def build_test_sender(settings: ProviderSettings) -> MailProvider:
    """What test keys send through: never a real provider. The capture provider when the chain
    has one (``make run``: test emails land in the outbox too), else the simulator."""
    if "capture" in settings.mail_providers:
        return _capture(settings)
    from chalicelib.providers.simulator import SimulatorProvider

    return SimulatorProvider()


def _ses(
    settings: ProviderSettings,
    client_factory: Callable[[], Any],
    quota_client_factory: Callable[[], Any] | None,
) -> MailProvider:
    from chalicelib.providers.ses import SesProvider

    return SesProvider(
        client_factory(),
        configuration_set=settings.ses_configuration_set,
        quota_client_factory=quota_client_factory,
    )


def _mailgun(settings: ProviderSettings) -> MailProvider:
    from chalicelib.providers.mailgun import MailgunProvider

    return MailgunProvider(
        _secret_text(settings.mailgun_api_key),
        settings.mailgun_domain or "",
        base_url=settings.mailgun_base_url,
        timeout=settings.provider_timeout_seconds,
    )


def _sendgrid(settings: ProviderSettings) -> MailProvider:
    from chalicelib.providers.sendgrid import SendGridProvider

    return SendGridProvider(
        _secret_text(settings.sendgrid_api_key),
        base_url=settings.sendgrid_base_url,
        timeout=settings.provider_timeout_seconds,
    )


def _capture(settings: ProviderSettings) -> MailProvider:
    from chalicelib.providers.capture import CaptureProvider

    return CaptureProvider(settings.capture_dir)


def _smtp(settings: ProviderSettings) -> SmtpProvider:
    from chalicelib.providers.smtp import SmtpProvider

    return SmtpProvider(
        settings.smtp_host or "",
        settings.smtp_port,
        username=settings.smtp_username,
        password=_secret_text(settings.smtp_password) if settings.smtp_password else None,
        security=settings.smtp_security,
        timeout=settings.smtp_timeout or settings.provider_timeout_seconds,
        max_connections=settings.smtp_max_connections,
    )


def _secret_text(value: SecretStr | str | None) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value or ""
