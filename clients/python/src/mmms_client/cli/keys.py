"""``mmms keys create|show|update|delete``: API keys, their kinds and policies (admin token).

A policy is JSON, inline or ``@file.json``, with the fields of SPEC section 12
(``allowed_senders``, ``allowed_recipient_domains``, ``inline_templates``, ``template_ids``,
``max_recipients_per_request``, ``daily_recipient_quota``, ``per_ip_per_minute``,
``require_captcha``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from mmms_client import models as m
from mmms_client.cli.support import JsonFlag, emit_json, session, stdout
from mmms_client.cli.tables import key_table

keys_app = typer.Typer(help="API keys (admin token).", no_args_is_help=True)

PolicyOption = Annotated[
    str | None, typer.Option("--policy", help="The key's policy: JSON, or @file.json.")
]
AllowedIps = Annotated[
    list[str] | None,
    typer.Option("--allowed-ip", help="A server key's caller CIDR (repeatable)."),
]


def policy_of(text: str | None) -> dict[str, Any] | None:
    """``--policy`` as a JSON object, inline or ``@file.json``."""
    if text is None:
        return None
    raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
    try:
        policy = json.loads(raw)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"--policy is not JSON: {error}") from error
    if not isinstance(policy, dict):
        raise typer.BadParameter("--policy takes a JSON object")
    return policy


@keys_app.command("create")
def keys_create(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the key.")],
    origin: Annotated[
        list[str] | None, typer.Option("--origin", help="An allowed origin host (repeatable).")
    ] = None,
    kind: Annotated[
        str, typer.Option(help="browser (bound to origins), or server (for backends).")
    ] = "browser",
    mode: Annotated[str, typer.Option(help="live, or test (mail only reaches a simulator).")] = (
        "live"
    ),
    expires_at: Annotated[str | None, typer.Option(help="Expiry, ISO 8601.")] = None,
    policy: PolicyOption = None,
    allowed_ip: AllowedIps = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key: it is shown once."""
    body: dict[str, Any] = {"name": name, "kind": kind, "mode": mode}
    if origin or kind == "browser":
        body["origin_names"] = origin or []
    optional = {"expires_at": expires_at, "policy": policy_of(policy), "allowed_ips": allowed_ip}
    body |= {field: value for field, value in optional.items() if value}
    current = session(context, as_json)
    with current.client() as mmms:
        data = mmms.create_key(cast(m.CreateApiKeyRequest, body))
    if current.json:
        emit_json(data)
        return
    stdout.print(f"key_id  {data['key_id']}\napi_key [bold]{data['api_key']}[/] (shown once)")


@keys_app.command("show")
def keys_show(
    context: typer.Context,
    api_key: Annotated[str, typer.Argument(help="The key or its key_id.")],
    as_json: JsonFlag = False,
) -> None:
    """A key's kind, mode, origins, policy (defaults filled in) and today's count."""
    current = session(context, as_json)
    with current.client() as mmms:
        data = mmms.get_key(api_key)
    if current.json:
        emit_json(data)
        return
    stdout.print(key_table(data))


@keys_app.command("update")
def keys_update(
    context: typer.Context,
    api_key: Annotated[str, typer.Argument(help="The key or its key_id.")],
    add_origin: Annotated[
        list[str] | None, typer.Option("--add-origin", help="Allow one more origin (repeatable).")
    ] = None,
    policy: PolicyOption = None,
    allowed_ip: AllowedIps = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a key: allow more origins, change policy fields, or its allowed IPs."""
    patch = {"policy": policy_of(policy), "allowed_ips": allowed_ip}
    patch = {field: value for field, value in patch.items() if value is not None}
    if not add_origin and not patch:
        raise typer.BadParameter("nothing to change: give --add-origin, --policy or --allowed-ip")
    current = session(context, as_json)
    with current.client() as mmms:
        if add_origin:
            mmms.add_origins(api_key, add_origin)
        data = mmms.update_key(api_key, cast(m.UpdateApiKeyRequest, patch)) if patch else None
        data = data or mmms.get_key(api_key)
    if current.json:
        emit_json(data)
        return
    stdout.print(key_table(data))


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
