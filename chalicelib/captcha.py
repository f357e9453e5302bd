"""CAPTCHA verification: Cloudflare Turnstile, hCaptcha and Google reCAPTCHA.

All three document the same server-side check ("siteverify"): a form POST
(``application/x-www-form-urlencoded``) of ``secret`` (the site's secret key), ``response``
(the token the widget gave the page) and optionally ``remoteip``; the answer is JSON whose
boolean ``success`` says whether the token is valid, with ``error-codes`` saying why not.
This adapter speaks that form and translates its failures at the boundary:

- a token the verifier refuses -> ``False`` (the service answers 403);
- the verifier unreachable, slow, answering 5xx or not JSON, or refusing *our secret*
  (``missing-input-secret``/``invalid-input-secret``: a deployment problem, not the
  caller's) -> :class:`~chalicelib.errors.CaptchaUnavailableError` (503).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, Protocol

from chalicelib.errors import CaptchaUnavailableError

log = logging.getLogger("mmms.captcha")

CaptchaProvider = Literal["turnstile", "hcaptcha", "recaptcha"]
VERIFY_URLS: dict[str, str] = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    "hcaptcha": "https://api.hcaptcha.com/siteverify",
    "recaptcha": "https://www.google.com/recaptcha/api/siteverify",
}
_OUR_SECRET_REFUSED = frozenset({"missing-input-secret", "invalid-input-secret"})
MAX_TOKEN_CHARS = 4096


class CaptchaVerifier(Protocol):
    def verify(self, token: str, remote_ip: str | None) -> bool: ...


class SiteverifyCaptcha:
    """The siteverify form of ``provider`` at ``url``; ``secret`` is read on first use."""

    def __init__(
        self,
        provider: str,
        url: str,
        secret: Callable[[], str],
        *,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.provider = provider
        self._url = url
        self._secret = secret
        self._timeout = timeout_seconds
        self._session: Any = None

    def verify(self, token: str, remote_ip: str | None) -> bool:
        import requests

        if self._session is None:
            self._session = requests.Session()
        form = {"secret": self._secret(), "response": token}
        if remote_ip:
            form["remoteip"] = remote_ip
        try:
            answer = self._session.post(self._url, data=form, timeout=self._timeout)
        except requests.RequestException as err:
            raise CaptchaUnavailableError(f"{self.provider} could not be reached") from err
        if answer.status_code >= 500 or answer.status_code == 429:
            raise CaptchaUnavailableError(f"{self.provider} answered {answer.status_code}")
        try:
            body = answer.json()
        except ValueError as err:
            raise CaptchaUnavailableError(f"{self.provider} did not answer JSON") from err
        if not isinstance(body, dict):
            raise CaptchaUnavailableError(f"{self.provider} answered an unexpected body")
        codes = body.get("error-codes") or []
        if isinstance(codes, list) and _OUR_SECRET_REFUSED.intersection(map(str, codes)):
            log.error("the CAPTCHA secret is refused", extra={"error_codes": codes})
            raise CaptchaUnavailableError(f"{self.provider} refused this service's secret")
        return body.get("success") is True
