"""The route table: registers views on Chalice with authentication and the error layer.

Every view registered through :class:`Router` gets

- the body-size limit (413) and authentication (API key + Origin, or admin bearer token),
- one ``try/except`` that turns *any* exception into the SPEC envelope (``error_response``),
- a 405 answer for every other method on its path, and a CORS preflight (OPTIONS) answer,
- its path parameters percent-decoded, once, here and nowhere else: API Gateway's REST API
  and Chalice's local server hand them over as they were in the URL (``a%2Bb%40x.org``), and
  the view gets ``a+b@x.org``, validated by ``chalicelib/models/paths.py`` (a 422 otherwise).

``finish()`` adds a greedy catch-all route so unknown paths get a 404 envelope from us
instead of API Gateway's "Missing Authentication Token". The recorded :class:`RouteSpec`
list is also what the OpenAPI document is generated from.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from chalice.app import Chalice, Request, Response
from pydantic import BaseModel

from chalicelib.bootstrap import Container
from chalicelib.errors import (
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    RequestValidationError,
)
from chalicelib.http.context import CALLER_KEY_ID, VERIFIED_ORIGIN, RequestContext
from chalicelib.http.context import current_request_id as _request_id
from chalicelib.http.cors import preflight_response
from chalicelib.http.responses import error_response
from chalicelib.models.paths import path_model
from chalicelib.services.api_keys import Caller

View = Callable[..., Response]
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
# A "%" that does not start an escape: the URL was not percent-encoded.
_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class Auth(enum.Enum):
    PUBLIC = "public"
    API_KEY = "api_key"
    ADMIN = "admin"
    # The admin token when an Authorization header is sent, else an API key.
    ADMIN_OR_API_KEY = "admin_or_api_key"


@dataclass(frozen=True)
class RouteSpec:
    """One operation, as documented in the OpenAPI document."""

    path: str
    method: str
    name: str
    summary: str
    auth: Auth
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    success_status: int = 200
    error_statuses: tuple[int, ...] = ()
    # Other success answers: status → (description, model of ``data`` or None).
    extra_responses: dict[int, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    # OpenAPI links of a success answer: status → {link name: (operationId, parameters)}.
    links: dict[int, dict[str, tuple[str, dict[str, str]]]] = field(default_factory=dict)


class RouteGroup:
    """Routes declared in a module of their own (like a Chalice Blueprint, for the Router's
    routes): :meth:`Router.include` registers them, in the order they were declared."""

    def __init__(self) -> None:
        self.declared: list[tuple[str, str, dict[str, Any], View]] = []

    def route(self, path: str, method: str, **options: Any) -> Callable[[View], View]:
        """Declare a route; ``options`` are :meth:`Router.route`'s keyword arguments."""

        def declare(view: View) -> View:
            self.declared.append((path, method, options, view))
            return view

        return declare


class Router:
    def __init__(self, app: Chalice, services: Callable[[], Container]) -> None:
        self.app = app
        self._services = services
        self.specs: list[RouteSpec] = []

    def route(
        self,
        path: str,
        method: str,
        *,
        summary: str,
        auth: Auth,
        request_model: type[BaseModel] | None = None,
        response_model: type[BaseModel] | None = None,
        query_model: type[BaseModel] | None = None,
        success_status: int = 200,
        error_statuses: tuple[int, ...] = (),
        extra_responses: dict[int, tuple[str, type[BaseModel] | None]] | None = None,
        links: dict[int, dict[str, tuple[str, dict[str, str]]]] | None = None,
    ) -> Callable[[View], View]:
        def register(view: View) -> View:
            spec = RouteSpec(
                path=path,
                method=method,
                name=view.__name__,
                summary=summary,
                auth=auth,
                request_model=request_model,
                response_model=response_model,
                query_model=query_model,
                success_status=success_status,
                error_statuses=error_statuses,
                extra_responses=extra_responses or {},
                links=links or {},
            )
            self.specs.append(spec)
            self.app.route(path, methods=[method], name=spec.name)(self._endpoint(spec, view))
            return view

        return register

    def include(self, group: RouteGroup) -> None:
        """Register a group's routes, in the order they were declared."""
        for path, method, options, view in group.declared:
            self.route(path, method, **options)(view)

    def methods_of(self, path: str) -> list[str]:
        """The methods declared on ``path`` (plus OPTIONS), for ``Allow`` headers."""
        declared = [spec.method for spec in self.specs if spec.path == path]
        return [*declared, "OPTIONS"] if declared else []

    def finish(self) -> None:
        """Add 405 and preflight answers on every path, and the 404 catch-all."""
        paths: dict[str, list[str]] = {}
        for spec in self.specs:
            paths.setdefault(spec.path, []).append(spec.method)
        for path, methods in paths.items():
            slug = _slug(path)
            others = [m for m in ALL_METHODS if m not in methods]
            if others:
                self.app.route(path, methods=others, name=f"not_allowed_{slug}")(
                    self._guarded(self._method_not_allowed([*methods, "OPTIONS"]))
                )
            self.app.route(path, methods=["OPTIONS"], name=f"preflight_{slug}")(
                self._guarded(self._preflight([*methods, "OPTIONS"]))
            )
        for catch_all in ("/", "/{proxy+}"):
            self.app.route(
                catch_all, methods=[*ALL_METHODS, "OPTIONS"], name=f"not_found_{_slug(catch_all)}"
            )(self._guarded(self._not_found))

    def _endpoint(self, spec: RouteSpec, view: View) -> Callable[..., Response]:
        def endpoint(**params: str) -> Response:
            request = self.app.current_request
            assert request is not None  # noqa: S101 - Chalice sets it before calling views
            # Only a body needs the settings: GET /v1/health stays free of any set-up.
            if request.raw_body:
                max_bytes = self._services().settings.max_body_bytes
                if len(request.raw_body) > max_bytes:
                    raise PayloadTooLargeError(f"Request body exceeds {max_bytes} bytes")
            caller = None
            auth = spec.auth
            if auth is Auth.ADMIN_OR_API_KEY:
                auth = Auth.ADMIN if "authorization" in request.headers else Auth.API_KEY
            if auth is Auth.ADMIN:
                self._services().admin.authenticate(request.headers.get("authorization"))
            elif auth is Auth.API_KEY:
                caller = self._caller(request)
            ctx = RequestContext(request=request, request_id=_request_id(), caller=caller)
            return view(ctx, **decode_path_parameters(spec.path, params))

        endpoint.__name__ = spec.name
        return self._guarded(endpoint)

    def _caller(self, request: Request) -> Caller:
        """The API key's caller, counted against the key's rate limits (429 beyond)."""
        services = self._services()
        caller = services.api_keys.authenticate(
            request.headers.get("x-api-key"), request.headers.get("origin"), source_ip(request)
        )
        CALLER_KEY_ID.set(str(caller.key_id))
        VERIFIED_ORIGIN.set(caller.origin or None)
        services.rate_limiter.check(caller.key_id)
        services.api_keys.check_client_ip(caller)
        return caller

    @staticmethod
    def _guarded(handler: Callable[..., Response]) -> Callable[..., Response]:
        """The error layer: every exception of every route becomes the error envelope."""

        def guarded(**params: str) -> Response:
            try:
                return handler(**params)
            except Exception as exc:
                return error_response(exc, _request_id())

        guarded.__name__ = handler.__name__
        return guarded

    def _preflight(self, methods: list[str]) -> Callable[..., Response]:
        def preflight(**_params: str) -> Response:
            request = self.app.current_request
            assert request is not None  # noqa: S101
            return preflight_response(request, methods, self._services)

        return preflight

    def _method_not_allowed(self, allowed: list[str]) -> Callable[..., Response]:
        def not_allowed(**_params: str) -> Response:
            request = self.app.current_request
            raise MethodNotAllowedError(request.method if request else "?", allowed)

        return not_allowed

    def _not_found(self, **_params: Any) -> Response:
        request = self.app.current_request
        path = request.context.get("path", "") if request is not None else ""
        raise NotFoundError(f"No route for {path or 'this path'}")


def decode_path_parameters(path: str, raw: dict[str, str]) -> dict[str, str]:
    """The parameters of a request on route ``path``, percent-decoded (UTF-8) and validated.

    Decoded exactly once: ``a%2525`` is ``a%25``. ``+`` is a plus sign in a path, not a space.
    A malformed escape, bytes that are not UTF-8, or a value its schema refuses is a 422.
    """
    decoded: dict[str, str] = {}
    errors: list[dict[str, object]] = []
    for name, value in raw.items():
        try:
            if _MALFORMED_ESCAPE.search(value):
                raise ValueError(value)
            decoded[name] = unquote(value, errors="strict")
        except ValueError:  # UnicodeDecodeError included
            errors.append(
                {
                    "type": "path_encoding",
                    "loc": [name],
                    "msg": "not percent-encoded UTF-8",
                    "input": value if len(value) <= 200 else None,
                }
            )
    if errors:
        raise RequestValidationError(errors)
    validated: dict[str, str] = path_model(path).model_validate(decoded).model_dump()
    return validated


def source_ip(request: Request) -> str | None:
    """The caller's address as API Gateway saw it (``requestContext.identity.sourceIp``; the
    local server puts its peer there). Never X-Forwarded-For, which any client writes."""
    identity = request.context.get("identity") or {}
    value = identity.get("sourceIp") if isinstance(identity, dict) else None
    try:
        return str(ipaddress.ip_address(value)) if isinstance(value, str) else None
    except ValueError:  # not an address (a test console's placeholder): no per-IP identity
        return None


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "root"
