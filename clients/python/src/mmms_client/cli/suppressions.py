"""``mmms suppressions list|add|remove``: the suppression list (admin token)."""

from __future__ import annotations

from typing import Annotated

import typer

from mmms_client.cli.support import JsonFlag, emit_json, session, stdout
from mmms_client.cli.tables import suppressions_table

suppressions_app = typer.Typer(help="The suppression list (admin token).", no_args_is_help=True)


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
