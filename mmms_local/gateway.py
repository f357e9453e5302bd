"""Make Chalice's local server behave like API Gateway where it matters: greedy paths, every
method reaching the app, a listen backlog that holds a burst of clients, and answers sent
at once.

API Gateway sends ``/v1/anything/else`` to a ``/{proxy+}`` route; Chalice's local
``RouteMatcher`` only matches routes with the same number of segments, so unknown deep
paths would get a bare 403 locally instead of our 404 envelope. This subclass falls back
to the longest greedy route whose prefix matches. Used by ``make run`` and the tests.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from chalice import local
from chalice.local import MatchResult, RouteMatcher

GREEDY_SUFFIX = "{proxy+}"
LISTEN_BACKLOG = 1024
# Methods no route declares; Chalice's local handler would not even pass them to the app.
EXTRA_METHODS = ("TRACE", "CONNECT", "PROPFIND", "LINK", "UNLINK", "QUERY")


class GreedyRouteMatcher(RouteMatcher):
    def match_route(self, url: str) -> MatchResult:
        try:
            return super().match_route(url)
        except ValueError:
            parsed = urlparse(url)
            path = parsed.path
            greedy = sorted(
                (r for r in self.route_urls if r.endswith(GREEDY_SUFFIX)), key=len, reverse=True
            )
            for route_url in greedy:
                prefix = route_url[: -len(GREEDY_SUFFIX)]
                if path.startswith(prefix) and len(path) > len(prefix):
                    query = parse_qs(parsed.query, keep_blank_values=True)
                    return MatchResult(route_url, {"proxy": path[len(prefix) :]}, query)
            raise


def install() -> None:
    """Use the greedy matcher in every LocalGateway created from now on, and hand every
    method to the app (BaseHTTPRequestHandler answers 501 HTML for methods it has no
    ``do_X`` for; the app answers 405 with the error envelope, as behind API Gateway).
    Idempotent."""
    local.RouteMatcher = GreedyRouteMatcher  # type: ignore[misc]
    # HTTPServer listens with a backlog of 5: a burst of new connections beyond it is reset
    # before a thread ever sees it. Each connection gets its own thread; let them queue.
    local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
    local.ThreadedHTTPServer.daemon_threads = True
    handler = local.ChaliceRequestHandler
    # The handler writes an answer's headers and its body apart: with Nagle's algorithm on,
    # the body waits for the client to acknowledge the headers, which it delays by up to
    # 40 ms, so each request on a kept-alive connection took 40 ms more (TCP_NODELAY).
    handler.disable_nagle_algorithm = True
    for method in EXTRA_METHODS:
        setattr(handler, f"do_{method}", handler._generic_handle)
    handler.__init__ = _with_peer_address  # type: ignore[method-assign]


def _with_peer_address(  # noqa: PLR0917 - ChaliceRequestHandler.__init__'s signature
    self: local.ChaliceRequestHandler,
    request: Any,
    client_address: tuple[str, int],
    server: Any,
    app_object: Any,
    config: Any,
) -> None:
    """Chalice's handler, telling the app the peer's address as API Gateway tells
    ``requestContext.identity.sourceIp`` (Chalice writes 127.0.0.1 whoever connects), so a
    server key's ``allowed_ips`` holds under ``make run`` as it does on AWS."""
    self.local_gateway = local.LocalGateway(app_object, config)
    self.local_gateway.event_converter.LOCAL_SOURCE_IP = client_address[0]
    BaseHTTPRequestHandler.__init__(self, request, client_address, server)
