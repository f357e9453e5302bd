"""The ``mmms`` command (SPEC section 14): the API from a shell, on ``MmmsClient``.

Settings come from flags or the environment: ``--url``/``MMMS_URL`` (default
http://127.0.0.1:8000, where ``make run`` listens), ``--api-key``/``MMMS_API_KEY``,
``--origin``/``MMMS_ORIGIN``, ``--admin-token``/``MMMS_ADMIN_TOKEN``. ``--json`` (before or
after the command) prints the answer's ``data`` as JSON for scripts; otherwise tables.

Exit codes: 0 done; 1 the service refused or failed the call (its message and request id on
stderr); 2 a usage error; 3 the service could not be reached.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.live import Live

from mmms_client import models as m
from mmms_client._render import recipients_table, suppressions_table
from mmms_client.client import MmmsClient
from mmms_client.errors import MmmsError

EXIT_REFUSED, EXIT_UNREACHABLE = 1, 3
# Statuses after which nothing is expected soon (a bounce may still follow a delivery).
SETTLED = frozenset({"delivered", "bounced", "complained", "failed", "suppressed", "cancelled"})

app = typer.Typer(
    name="mmms",
    help="MMMS, the Mail Micro Service, from the shell.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="API keys (admin token).", no_args_is_help=True)
suppressions_app = typer.Typer(help="The suppression list (admin token).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(suppressions_app, name="suppressions")

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the answer's data as JSON.", show_default=False)
]
stdout = Console()


@dataclass
class Session:
    url: str
    api_key: str | None
    origin: str | None
    admin_token: str | None
    json: bool

    def client(self) -> MmmsClient:
        return MmmsClient(self.url, self.api_key, origin=self.origin, admin_token=self.admin_token)


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


def session(context: typer.Context, as_json: bool) -> Session:
    current: Session = context.find_root().obj
    current.json = current.json or as_json
    return current


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def mailbox(text: str) -> tuple[str | None, str]:
    """``Ann <ann@example.org>`` -> ("Ann", "ann@example.org"); a bare address has no name."""
    name, address = parseaddr(text)
    if not address or "@" not in address:
        raise typer.BadParameter(f"not an email address: {text!r}")
    return name or None, address


def key_values(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise typer.BadParameter(f"--param takes KEY=VALUE, not {pair!r}")
        values[key] = value
    return values


@app.command()
def send(
    context: typer.Context,
    sender: Annotated[str, typer.Option("--from", help="Sender: ADDR or 'Name <ADDR>'.")],
    to: Annotated[list[str], typer.Option("--to", help="A recipient (repeat for more).")],
    template: Annotated[str | None, typer.Option(help="A stored template's id.")] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE for the template (repeatable).")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Inline subject template.")] = None,
    html: Annotated[str | None, typer.Option(help="Inline HTML template.")] = None,
    email_id: Annotated[
        str | None, typer.Option(help="Idempotency id (default: a new one).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send one email (to one or more recipients): a stored template, or an inline one."""
    if template is not None and (subject is not None or html is not None):
        raise typer.BadParameter("give --template, or --subject and --html, not both")
    if template is None and (subject is None or html is None):
        raise typer.BadParameter("give --template ID, or both --subject and --html")
    sender_name, sender_email = mailbox(sender)
    recipients: list[m.RecipientIn] = []
    for address in to:
        name, mail = mailbox(address)
        recipients.append({"mail": mail, "name": name} if name else {"mail": mail})
    body: dict[str, Any] = {
        "email_id": email_id or f"cli-{uuid.uuid4().hex[:20]}",
        "sender_email": sender_email,
        "recipients": recipients,
    }
    if sender_name:
        body["sender_name"] = sender_name
    if template is not None:
        body["template_id"] = template
        if param:
            body["params"] = key_values(param)
    else:
        body |= {"subject": subject, "html_template": html}
    current = session(context, as_json)
    with current.client() as mmms:
        data: Any = mmms.send_mail(cast(m.SendMailRequest, body))
    if current.json:
        emit_json(data)
        return
    statuses = data["recipients"] if "recipients" in data else [data["status"]]
    stdout.print(f"email_id [bold]{body['email_id']}[/]")
    stdout.print(recipients_table(statuses))


def _all_recipients(mmms: MmmsClient, email_id: str) -> dict[str, Any]:
    recipients = list(mmms.recipients(email_id, limit=1000))
    return {"email_id": email_id, "count": len(recipients), "recipients": recipients}


@app.command()
def status(
    context: typer.Context,
    email_id: Annotated[str, typer.Argument(help="The email's id.")],
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh until every recipient has settled.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Every recipient of an email and its status (all pages)."""
    current = session(context, as_json)
    with current.client() as mmms:
        data = _all_recipients(mmms, email_id)
        # A live table on a terminal; elsewhere (a pipe, a log) only the settled one.
        live = watch and not current.json and stdout.is_terminal
        if watch:
            data = _watch(mmms, email_id, data, live=live)
    if current.json:
        emit_json(data)
    elif not live:
        stdout.print(recipients_table(data["recipients"]))


def _settled(data: dict[str, Any]) -> bool:
    return all(r["status"] in SETTLED for r in data["recipients"])


def _watch(mmms: MmmsClient, email_id: str, data: dict[str, Any], *, live: bool) -> dict[str, Any]:
    """Poll every second until every recipient has settled, showing the table live if asked."""
    with (
        Live(recipients_table(data["recipients"]), console=stdout)
        if live
        else nullcontext() as screen
    ):
        while not _settled(data):
            time.sleep(1)
            data = _all_recipients(mmms, email_id)
            if screen is not None:
                screen.update(recipients_table(data["recipients"]))
    return data


@keys_app.command("create")
def keys_create(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the key.")],
    origin: Annotated[
        list[str] | None, typer.Option("--origin", help="An allowed origin host (repeatable).")
    ] = None,
    mode: Annotated[str, typer.Option(help="live, or test (mail only reaches a simulator).")] = (
        "live"
    ),
    expires_at: Annotated[str | None, typer.Option(help="Expiry, ISO 8601.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key: it is shown once."""
    body: dict[str, Any] = {"name": name, "origin_names": origin or [], "mode": mode}
    if expires_at:
        body["expires_at"] = expires_at
    current = session(context, as_json)
    with current.client() as mmms:
        data = mmms.create_key(cast(m.CreateApiKeyRequest, body))
    if current.json:
        emit_json(data)
        return
    stdout.print(f"key_id  {data['key_id']}\napi_key [bold]{data['api_key']}[/] (shown once)")


@keys_app.command("update")
def keys_update(
    context: typer.Context,
    api_key: Annotated[str, typer.Argument(help="The key or its key_id.")],
    add_origin: Annotated[
        list[str] | None, typer.Option("--add-origin", help="Allow one more origin (repeatable).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a key: allow more origins."""
    if not add_origin:
        raise typer.BadParameter("nothing to change: give --add-origin")
    current = session(context, as_json)
    with current.client() as mmms:
        data = mmms.add_origins(api_key, add_origin)
    if current.json:
        emit_json(data)
        return
    stdout.print("origins added: " + ", ".join(o["name"] for o in data["added_origins"]))


@keys_app.command("delete")
def keys_delete(
    context: typer.Context,
    api_key: Annotated[str, typer.Argument(help="The key or its key_id.")],
    as_json: JsonFlag = False,
) -> None:
    """Delete a key: from then on it gets 401."""
    current = session(context, as_json)
    with current.client() as mmms:
        data = mmms.delete_key(api_key)
    if current.json:
        emit_json(data)
        return
    stdout.print(f"deleted {data['api_key']}")


@suppressions_app.command("list")
def suppressions_list(
    context: typer.Context,
    address: Annotated[str | None, typer.Option(help="Look up one address.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The suppression list (all pages), or one address."""
    current = session(context, as_json)
    with current.client() as mmms:
        entries = list(mmms.suppressions(address=address, limit=1000))
    if current.json:
        emit_json({"suppressions": entries})
        return
    stdout.print(suppressions_table(entries))


@suppressions_app.command("add")
def suppressions_add(
    context: typer.Context,
    addresses: Annotated[list[str], typer.Argument(help="Addresses to suppress.")],
    as_json: JsonFlag = False,
) -> None:
    """Put addresses on the suppression list (reason: manual)."""
    current = session(context, as_json)
    with current.client() as mmms:
        data = mmms.add_suppressions(addresses)
    if current.json:
        emit_json(data)
        return
    stdout.print(suppressions_table(data["added"]))


@suppressions_app.command("remove")
def suppressions_remove(
    context: typer.Context,
    address: Annotated[str, typer.Argument(help="The address to take off the list.")],
    as_json: JsonFlag = False,
) -> None:
    """Take an address off the suppression list."""
    current = session(context, as_json)
    with current.client() as mmms:
        data = mmms.remove_suppression(address)
    if current.json:
        emit_json(data)
        return
    stdout.print(f"removed {data['address']}")


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
