"""``mmms send`` and ``mmms status``: an email out, and its recipients' statuses."""

from __future__ import annotations

import time
import uuid
from contextlib import nullcontext
from typing import Annotated, Any, cast

import typer
from rich.live import Live

from mmms_client import models as m
from mmms_client.cli.support import JsonFlag, emit_json, key_values, mailbox, session, stdout
from mmms_client.cli.tables import recipients_table
from mmms_client.client import MmmsClient

# Statuses after which nothing is expected soon (a bounce may still follow a delivery).
SETTLED = frozenset({"delivered", "bounced", "complained", "failed", "suppressed", "cancelled"})


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
    body = mail_body(sender, to, template, param, subject, html, email_id)
    current = session(context, as_json)
    with current.client() as mmms:
        data: Any = mmms.send_mail(cast(m.SendMailRequest, body))
    if current.json:
        emit_json(data)
        return
    statuses = data["recipients"] if "recipients" in data else [data["status"]]
    stdout.print(f"email_id [bold]{body['email_id']}[/]")
    stdout.print(recipients_table(statuses))


def mail_body(
    sender: str,
    to: list[str],
    template: str | None,
    param: list[str] | None,
    subject: str | None,
    html: str | None,
    email_id: str | None,
) -> dict[str, Any]:
    """The POST /v1/mail body the flags describe (a usage error when they contradict)."""
    if template is not None and (subject is not None or html is not None):
        raise typer.BadParameter("give --template, or --subject and --html, not both")
    if template is None and (subject is None or html is None):
        raise typer.BadParameter("give --template ID, or both --subject and --html")
    sender_name, sender_email = mailbox(sender)
    recipients: list[dict[str, str]] = []
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
    else:
        body |= {"subject": subject, "html_template": html}
    if param:
        body["params"] = key_values(param)
    return body


def all_recipients(mmms: MmmsClient, email_id: str) -> dict[str, Any]:
    recipients = list(mmms.recipients(email_id, limit=1000))
    return {"email_id": email_id, "count": len(recipients), "recipients": recipients}


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
        data = all_recipients(mmms, email_id)
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
            data = all_recipients(mmms, email_id)
            if screen is not None:
                screen.update(recipients_table(data["recipients"]))
    return data
