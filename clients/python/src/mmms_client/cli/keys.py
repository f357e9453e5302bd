"""``mmms keys create|update|delete``: API keys (admin token)."""

from __future__ import annotations

from typing import Annotated, Any, cast

import typer

from mmms_client import models as m
from mmms_client.cli.support import JsonFlag, emit_json, session, stdout

keys_app = typer.Typer(help="API keys (admin token).", no_args_is_help=True)


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
