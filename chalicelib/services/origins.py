"""Origin rules: what an allowed origin may look like, and whether a request's Origin matches.

An allowed origin is a host name, optionally with a port (``app.example.com``,
``localhost:4321``), or a wildcard for subdomains (``*.example.com``: any subdomain at any
depth, not ``example.com`` itself). A request's ``Origin`` header
(``https://app.example.com``) matches on its host; a port in the allowed name must equal the
request's port (the scheme's default when the header names none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
_ALLOWED_ORIGIN = re.compile(rf"^(?P<wild>\*\.)?(?P<host>{_HOST})(?::(?P<port>\d{{1,5}}))?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ORIGIN_LENGTH = 253
# What the API documents and accepts for an allowed origin name (any case, trimmed).
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_DOC_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Trimmed: ASCII white space only, spelled out: Python's str.strip and the document's ECMA \s
# would each trim characters the other keeps (\x1c-\x1f and \x85; \ufeff).
_TRIMMED = " \t\n\x0b\f\r"
ORIGIN_NAME_PATTERN = (
    rf"^[ \t\n\x0b\f\r]*(?:\*\.{_DOC_LABEL}(?:\.{_DOC_LABEL})+|{_DOC_LABEL}(?:\.{_DOC_LABEL})*)"
    rf"(?::{_PORT})?[ \t\n\x0b\f\r]*$"
)


@dataclass(frozen=True)
class RequestOrigin:
    host: str
    port: int | None


def normalize_origin_name(raw: str) -> str:
    """The canonical (lower-case) form of an allowed origin, or ValueError saying why not."""
    name = raw.strip(_TRIMMED)
    if not name.isascii():  # "\u212a".lower() is "k": a name the document refuses
        raise ValueError("not a host name, host:port or *.domain")
    name = name.lower()
    if "://" in name or "/" in name:
        raise ValueError("an origin is a host name (optionally host:port), not a URL")
    match = _ALLOWED_ORIGIN.match(name) if len(name) <= MAX_ORIGIN_LENGTH else None
    if match is None:
        raise ValueError("not a host name, host:port or *.domain")
    port = match.group("port")
    if port is not None and (port.startswith("0") or not 0 < int(port) < 65536):
        raise ValueError("port out of range (1-65535, no leading zero)")
    if match.group("wild") and "." not in match.group("host"):
        raise ValueError("a wildcard must cover subdomains of a domain, e.g. *.example.com")
    return name


def parse_request_origin(header: str | None) -> RequestOrigin | None:
    """The host and port of an ``Origin`` header, or None when absent or unusable."""
    if not header or header == "null":
        return None
    try:
        parts = urlsplit(header.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.scheme not in _DEFAULT_PORTS:
        return None
    return RequestOrigin(host=host.lower(), port=port or _DEFAULT_PORTS[parts.scheme])


def origin_allowed(allowed_names: list[str], origin: RequestOrigin) -> bool:
    """True when any allowed origin name matches the request's origin."""
    return any(_matches(name, origin) for name in allowed_names)


def _matches(name: str, origin: RequestOrigin) -> bool:
    host, _, port = name.partition(":")
    if port and int(port) != origin.port:
        return False
    if host.startswith("*."):
        return origin.host.endswith(host[1:])
    return origin.host == host
