"""What a key may do (SPEC 12), checked on the server whatever the Origin says.

A browser key is public: it sits in the page's source and ``Origin`` is a courtesy of
browsers. So every send is held to the key's policy before anything is recorded: allowed
senders, allowed recipient domains (recipients, cc and bcc), inline templates or stored ones
only, which stored templates, recipients per request, a CAPTCHA. A refusal is a 403 whose
``details[].loc`` names the field; the daily quota and the per-IP limit (429) are counted in
PostgreSQL (``KeyLimits``) so every instance shares them.

:class:`KeyPolicy` is the policy with the deployment's defaults filled in; it is pure, so the
campaign processing can hold every row of a file to it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from chalicelib.errors import CaptchaUnavailableError, ForbiddenError

KeyKind = Literal["browser", "server"]
Loc = tuple[str | int, ...]

POLICY_FIELDS = (
    "allowed_senders",
    "allowed_recipient_domains",
    "inline_templates",
    "template_ids",
    "max_recipients_per_request",
    "daily_recipient_quota",
    "per_ip_per_minute",
    "require_captcha",
)


@dataclass(frozen=True)
class PolicyDefaults:
    """The deployment's settings a policy falls back on."""

    max_recipients: int
    browser_daily_quota: int
    browser_per_ip_per_minute: int


@dataclass(frozen=True)
class KeyPolicy:
    """A key's policy, defaults filled in. ``None`` means no restriction."""

    allowed_senders: tuple[str, ...] | None = None
    allowed_recipient_domains: tuple[str, ...] | None = None
    inline_templates: bool = True
    template_ids: tuple[str, ...] | None = None
    max_recipients_per_request: int = 10_000
    daily_recipient_quota: int | None = None
    per_ip_per_minute: int | None = None
    require_captcha: bool = False

    @classmethod
    def resolve(
        cls, kind: KeyKind, stored: Mapping[str, Any], defaults: PolicyDefaults
    ) -> KeyPolicy:
        """The policy of a key whose stored fields are ``stored`` (only those set on it)."""

        def listed(name: str) -> tuple[str, ...] | None:
            value = stored.get(name)
            return None if value is None else tuple(value)

        browser = kind == "browser"
        quota = stored.get("daily_recipient_quota")
        per_ip = stored.get("per_ip_per_minute")
        cap = stored.get("max_recipients_per_request")
        return cls(
            allowed_senders=listed("allowed_senders"),
            allowed_recipient_domains=listed("allowed_recipient_domains"),
            inline_templates=bool(stored.get("inline_templates", True)),
            template_ids=listed("template_ids"),
            max_recipients_per_request=min(cap or defaults.max_recipients, defaults.max_recipients),
            daily_recipient_quota=quota or (defaults.browser_daily_quota if browser else None),
            per_ip_per_minute=per_ip or (defaults.browser_per_ip_per_minute if browser else None),
            require_captcha=bool(stored.get("require_captcha", False)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in ((name, getattr(self, name)) for name in POLICY_FIELDS)
        }

    # --- the checks of one request; each returns the refusals (loc, message) it finds ---

    def sender_refusal(self, sender_email: str, loc: Loc = ("sender_email",)) -> list[Refusal]:
        if self.allowed_senders is None or sender_allowed(self.allowed_senders, sender_email):
            return []
        return [Refusal(loc, f"{sender_email} is not an allowed sender for this key")]

    def recipient_refusal(self, address: str, loc: Loc) -> list[Refusal]:
        domains = self.allowed_recipient_domains
        if domains is None or domain_allowed(domains, address):
            return []
        return [Refusal(loc, f"{address}: the key may only mail {', '.join(domains)}")]

    def template_refusals(
        self, *, template_id: str | None, inline_fields: Iterable[str]
    ) -> list[Refusal]:
        refusals = []
        if not self.inline_templates:
            refusals += [
                Refusal((field,), "this key may only send stored templates (template_id)")
                for field in inline_fields
            ]
        allowed = self.template_ids
        if template_id is not None and allowed is not None and template_id not in allowed:
            refusals.append(Refusal(("template_id",), "this key may not use this template"))
        return refusals

    def size_refusal(self, count: int) -> list[Refusal]:
        if count <= self.max_recipients_per_request:
            return []
        return [
            Refusal(
                ("recipients",),
                f"{count} recipients; this key may send to at most"
                f" {self.max_recipients_per_request} per request",
            )
        ]


@dataclass(frozen=True)
class Refusal:
    loc: Loc
    message: str


MAX_LISTED_REFUSALS = 100


def refuse(refusals: list[Refusal]) -> None:
    """Raise the 403 for ``refusals`` (the first 100 listed), if there are any."""
    if not refusals:
        return
    details = [
        {"type": "forbidden", "loc": list(r.loc), "msg": r.message, "input": None}
        for r in refusals[:MAX_LISTED_REFUSALS]
    ]
    first = refusals[0].message
    more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
    raise ForbiddenError(f"The key's policy refuses this request: {first}{more}", details=details)


def sender_allowed(rules: Iterable[str], address: str) -> bool:
    lowered = address.lower()
    domain = "@" + lowered.rpartition("@")[2]
    return any(rule in (lowered, domain) for rule in rules)


def domain_allowed(rules: Iterable[str], address: str) -> bool:
    domain = address.lower().rpartition("@")[2]
    for rule in rules:
        if rule.startswith("*."):
            if domain.endswith(rule[1:]):
                return True
        elif domain == rule:
            return True
    return False


class CaptchaCheck(Protocol):
    def verify(self, token: str, remote_ip: str | None) -> bool: ...


MAX_CAPTCHA_TOKEN_CHARS = 4096


class SendGate:
    """Holds a send (or a campaign) to its key's policy before anything is recorded: every
    refusal of the request at once (403), then the CAPTCHA (403 refused, 503 verifier down).
    The quota is counted with the rows it counts (``reserve_recipients``)."""

    def __init__(
        self, captcha: CaptchaCheck | None = None, *, max_recipients: int = 10_000
    ) -> None:
        self._captcha = captcha
        # Past the deployment's own limit a request is a 413 (MailService), not a refusal.
        self._max_recipients = max_recipients

    def authorize(
        self,
        policy: KeyPolicy,
        mail: MailFields,
        *,
        recipients: list[str],
        captcha_token: str | None,
        client_ip: str | None,
    ) -> None:
        refusals = []
        if len(recipients) <= self._max_recipients:
            refusals += policy.size_refusal(len(recipients))
        refusals += policy.sender_refusal(mail.sender_email)
        for index, address in enumerate(recipients):
            refusals += policy.recipient_refusal(address, ("recipients", index, "mail"))
        for field in ("cc", "bcc"):
            for index, address in enumerate(getattr(mail, field)):
                refusals += policy.recipient_refusal(address, (field, index))
        inline = [f for f in INLINE_TEMPLATE_FIELDS if getattr(mail, f, None) is not None]
        refusals += policy.template_refusals(template_id=mail.template_id, inline_fields=inline)
        refuse(refusals)
        if policy.require_captcha:
            self.verify_captcha(captcha_token, client_ip)

    def verify_captcha(self, token: str | None, client_ip: str | None) -> None:
        """403 unless the verifier accepts ``token`` (503 when it cannot say)."""
        loc = ("X-Captcha-Token",)
        if not token or not token.strip():
            refuse([Refusal(loc, "this key requires a CAPTCHA: send its token in X-Captcha-Token")])
            return
        if len(token) > MAX_CAPTCHA_TOKEN_CHARS:
            refuse([Refusal(loc, "the CAPTCHA token is too long")])
        if self._captcha is None:  # a key cannot require it then; a config removed since
            raise CaptchaUnavailableError("no CAPTCHA provider is configured")
        if not self._captcha.verify(token.strip(), client_ip):
            refuse([Refusal(loc, "the CAPTCHA token was refused by the verifier")])


INLINE_TEMPLATE_FIELDS = ("subject", "html_template", "text_template")


class MailFields(Protocol):
    """What the gate reads of a send request (``POST /v1/mail``, a campaign)."""

    @property
    def sender_email(self) -> str: ...
    @property
    def cc(self) -> list[str]: ...
    @property
    def bcc(self) -> list[str]: ...
    @property
    def template_id(self) -> str | None: ...
