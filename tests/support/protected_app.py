"""A small Chalice app wired like ``app.py``, with routes that exercise the HTTP layer.

Used to test authentication and the error layer independently of any business route.
"""

from __future__ import annotations

from chalice.app import Chalice, Response

from chalicelib.bootstrap import container
from chalicelib.http.context import RequestContext
from chalicelib.http.cors import configured_allow_list, origin_of_a_live_key
from chalicelib.http.middleware import make_http_middleware
from chalicelib.http.responses import success
from chalicelib.http.routing import Auth, Router

SECRET_IN_ERROR = "postgresql://user:hunter2@db/secret SELECT * FROM api_keys"


def build_app() -> Chalice:
    app = Chalice(app_name="mmms-test")
    app.register_middleware(
        make_http_middleware(configured_allow_list, origin_of_a_live_key), "http"
    )
    router = Router(app, container)

    @router.route("/v1/whoami", "POST", summary="protected", auth=Auth.API_KEY)
    def whoami(ctx: RequestContext) -> Response:
        caller = ctx.require_caller()
        return success("ok", {"key_id": str(caller.key_id)})

    @router.route("/v1/boom", "GET", summary="crashes", auth=Auth.PUBLIC)
    def boom(ctx: RequestContext) -> Response:
        raise RuntimeError(SECRET_IN_ERROR)

    router.finish()
    return app
