"""The ``mmms`` command (SPEC section 14): the API from a shell, on ``MmmsClient``.

Settings come from flags or the environment: ``--url``/``MMMS_URL`` (default
http://127.0.0.1:8000, where ``make run`` listens), ``--api-key``/``MMMS_API_KEY``,
``--origin``/``MMMS_ORIGIN``, ``--admin-token``/``MMMS_ADMIN_TOKEN``. ``--json`` (before or
after the command) prints the answer's ``data`` as JSON for scripts; otherwise tables.

Exit codes: 0 done; 1 the service refused or failed the call (its message and request id on
stderr); 2 a usage error; 3 the service could not be reached.

One module per group of commands: ``mail`` (send, status), ``campaigns``, ``keys``,
``suppressions``, ``templates``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from mmms_client.cli.campaigns import campaign_app
from mmms_client.cli.keys import keys_app
from mmms_client.cli.mail import send, status
from mmms_client.cli.support import JsonFlag, Session
from mmms_client.cli.suppressions import suppressions_app
from mmms_client.cli.templates import templates_app
from mmms_client.errors import MmmsError

EXIT_REFUSED, EXIT_UNREACHABLE = 1, 3

app = typer.Typer(
    name="mmms",
    help="MMMS, the Mail Micro Service, from the shell.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(send)
app.command()(status)
app.add_typer(campaign_app, name="campaign")
app.add_typer(keys_app, name="keys")
app.add_typer(suppressions_app, name="suppressions")
app.add_typer(templates_app, name="templates")


@app.callback()
def settings(
    context: typer.Context,
    url: Annotated[
        str, typer.Option("--url", envvar="MMMS_URL", help="The service's address.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="MMMS_API_KEY", help="An API key.")
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option("--origin", envvar="MMMS_ORIGIN", help="Origin header for a browser key."),
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option("--admin-token", envvar="MMMS_ADMIN_TOKEN", help="The admin token."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    context.obj = Session(url, api_key, origin, admin_token, as_json)


def main() -> None:
    """The console script: the app, with an MmmsError turned into stderr and an exit code."""
    try:
        app()
    except MmmsError as error:
        errors = Console(stderr=True, highlight=False, soft_wrap=True)
        errors.print(f"mmms: {error}", markup=False)
        for detail in error.details if isinstance(error.details, list) else []:
            if isinstance(detail, dict) and "msg" in detail:
                where = ".".join(str(part) for part in detail.get("loc", []))
                errors.print(f"  {where}: {detail['msg']}", markup=False)
        sys.exit(EXIT_UNREACHABLE if error.status == 0 else EXIT_REFUSED)
