"""``mmms campaign send FILE``: a campaign from a CSV or JSONL file (SPEC section 13).

Creates the campaign (the ``send`` flags: sender, template or inline content, params, email
id), uploads the file with a progress bar, and with ``--watch`` follows it to the end with a
bar fed by the campaign's counts (every recipient no longer queued). A watched campaign that
ends ``failed`` or ``cancelled`` exits 1 after printing it, the reason and the first invalid
rows on stderr: a script's ``&&`` must not go on as if it had been sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn

from mmms_client import models as m
from mmms_client.cli.mail import mail_body
from mmms_client.cli.support import JsonFlag, emit_json, session, stdout
from mmms_client.cli.tables import campaign_table
from mmms_client.client import MmmsClient

EXIT_NOT_COMPLETED = 1
campaign_app = typer.Typer(help="Campaigns: bulk sends from a file.", no_args_is_help=True)


@campaign_app.command("send")
def campaign_send(
    context: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Recipients: CSV (a mail column) or JSONL.", exists=True)
    ],
    sender: Annotated[str, typer.Option("--from", help="Sender: ADDR or 'Name <ADDR>'.")],
    template: Annotated[str | None, typer.Option(help="A stored template's id.")] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE for every recipient (repeatable).")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Inline subject template.")] = None,
    html: Annotated[str | None, typer.Option(help="Inline HTML template.")] = None,
    email_id: Annotated[
        str | None, typer.Option(help="Idempotency id (default: a new one).")
    ] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl (default: from the name).")
    ] = None,
    send_at: Annotated[str | None, typer.Option(help="UTC time to send at, ISO 8601.")] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Skip invalid rows instead of failing.")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow the campaign to the end with a progress bar.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Send one email to every recipient of a file."""
    body = mail_body(sender, [], template, param, subject, html, email_id)
    del body["recipients"]
    body["format"] = file_format or ("jsonl" if file.suffix.lower() == ".jsonl" else "csv")
    if send_at:
        body["send_at"] = send_at
    if skip_invalid:
        body["skip_invalid"] = True
    current = session(context, as_json)
    show = not current.json
    with current.client() as mmms:
        created = mmms.create_campaign(cast(m.CreateCampaignRequest, body))
        _upload(mmms, created, file, show=show)
        campaign: Any = mmms.get_campaign(created["campaign_id"])
        if watch:
            campaign = _watch(mmms, created["campaign_id"], show=show)
    if current.json:
        emit_json(campaign)
    else:
        stdout.print(campaign_table(campaign))
    if watch and campaign["status"] != "completed":
        _ended_badly(campaign)


def _ended_badly(campaign: m.CampaignData) -> None:
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    errors.print(
        f"mmms: campaign {campaign['campaign_id']} {campaign['status']}"
        f" ({campaign['error_count']} invalid rows)",
        markup=False,
    )
    for error in campaign["errors"][:10]:
        errors.print(f"  line {error['line']}: {error['field']}: {error['message']}", markup=False)
    raise typer.Exit(EXIT_NOT_COMPLETED)


def _upload(mmms: MmmsClient, created: Any, file: Path, *, show: bool) -> None:
    columns = (TextColumn("upload"), BarColumn(), DownloadColumn())
    with Progress(*columns, console=stdout, disable=not show) as bar:
        task = bar.add_task("upload", total=file.stat().st_size)
        mmms.upload_campaign_file(
            created, file, on_progress=lambda sent, total: bar.update(task, completed=sent)
        )


def _watch(mmms: MmmsClient, campaign_id: str, *, show: bool) -> m.CampaignData:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=stdout, disable=not show) as bar:
        task = bar.add_task("validating", total=None)

        def progress(campaign: m.CampaignData) -> None:
            counts: dict[str, int] = dict(cast(dict[str, int], campaign["counts"]))
            total = sum(counts.values()) or None
            done = (total or 0) - counts.get("queued", 0)
            bar.update(task, description=str(campaign["status"]), total=total, completed=done)

        return mmms.wait_for_campaign(campaign_id, interval=1.0, on_progress=progress)
