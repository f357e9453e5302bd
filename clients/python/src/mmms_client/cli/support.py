"""What every ``mmms`` command shares: its settings, its output, its argument parsing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Annotated, Any

import typer
from rich.console import Console

from mmms_client.client import MmmsClient

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the answer's data as JSON.", show_default=False)
]
stdout = Console()


@dataclass
class Session:
    """The settings of one invocation (flags before the command, or MMMS_* variables)."""

    url: str
    api_key: str | None
    origin: str | None
    admin_token: str | None
    json: bool

    def client(self) -> MmmsClient:
        return MmmsClient(self.url, self.api_key, origin=self.origin, admin_token=self.admin_token)


def session(context: typer.Context, as_json: bool) -> Session:
    """The invocation's settings; ``--json`` counts before or after the command."""
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
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}`` (for ``--param``)."""
    values = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise typer.BadParameter(f"--param takes KEY=VALUE, not {pair!r}")
        values[key] = value
    return values
