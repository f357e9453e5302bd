"""CORS for per-key origins (Chalice's CORSConfig takes one origin; see CHALICE_NOTES).

An origin may read our answers when it is listed in ``CORS_ALLOW_ORIGINS`` (full origins,
e.g. ``http://localhost:4321``, or ``*``), or, for a request authenticated with an API key,
when that key allows it. A preflight carries no API key, so it is allowed when the static
list or *some* live key allows the origin.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice.app import Request, Response

from chalicelib.bootstrap import Container

ALLOW_HEADERS = "Content-Type, X-Api-Key, Authorization, X-Request-Id, X-Captcha-Token"
EXPOSE_HEADERS = "X-Request-Id, Retry-After"
MAX_AGE_SECONDS = "600"


def configured_allow_list() -> list[str]:
    """CORS_ALLOW_ORIGINS of the process's settings (read per request, built on first use)."""
    from chalicelib.bootstrap import container

    return container().settings.cors_allow_origins


def origin_of_a_live_key(origin: str) -> bool:
    """True when a live API key allows ``origin``."""
    from chalicelib.bootstrap import container

    return container().api_keys.origin_registered(origin)


def statically_allowed(origin: str, allow_list: list[str]) -> bool:
    return "*" in allow_list or origin in allow_list


def add_cors_headers(response: Response, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    _vary_on_origin(response)


def _vary_on_origin(response: Response) -> None:
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, Origin" if vary and "Origin" not in vary else "Origin"


def preflight_response(
    request: Request, methods: list[str], services: Callable[[], Container]
) -> Response:
    """204 with the CORS grant when the origin is allowed, 204 without it otherwise."""
    response = Response(body="", status_code=204, headers={})
    _vary_on_origin(response)
    origin = request.headers.get("origin")
    if not origin:
        return response
    container = services()
    if statically_allowed(origin, container.settings.cors_allow_origins) or (
        container.api_keys.origin_registered(origin)
    ):
        response.headers.update(
            {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ", ".join(methods),
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": MAX_AGE_SECONDS,
            }
        )
    return response
