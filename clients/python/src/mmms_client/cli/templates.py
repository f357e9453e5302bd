"""``mmms templates push|list|preview``: stored templates (admin token; SPEC section 12).

``push`` takes folders laid out either way:

- a template per folder: ``welcome/subject``, ``welcome/*.html`` and optionally
  ``welcome/*.txt`` (the template is named after the folder);
- a folder of templates: ``welcome.html`` with ``welcome.subject`` and optionally
  ``welcome.txt`` beside it, one template per ``*.html`` (named after the file).

Optional beside them: ``sample_params.json`` (a folder template) or ``NAME.params.json``, the
sample values a template is test-rendered with when saved. A template of that name is created
when there is none, gets a new version when its subject, HTML or text changed, and is left
alone otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.markup import escape

from mmms_client import models as m
from mmms_client.cli.support import JsonFlag, emit_json, key_values, mailbox, session, stdout
from mmms_client.cli.tables import templates_table
from mmms_client.client import MmmsClient

templates_app = typer.Typer(help="Stored templates (admin token).", no_args_is_help=True)


@dataclass(frozen=True)
class LocalTemplate:
    name: str
    subject: str
    html: str
    text: str | None
    sample_params: dict[str, str] | None

    def body(self) -> m.TemplateRequest:
        body: dict[str, Any] = {"name": self.name, "subject": self.subject, "html": self.html}
        if self.text is not None:
            body["text"] = self.text
        if self.sample_params is not None:
            body["sample_params"] = self.sample_params
        return cast(m.TemplateRequest, body)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _params(path: Path) -> dict[str, str] | None:
    return json.loads(_read(path)) if path.is_file() else None


def _one(folder: Path, pattern: str, *, required: bool) -> Path | None:
    found = sorted(folder.glob(pattern))
    if len(found) > 1 or (required and not found):
        raise typer.BadParameter(f"{folder} needs {'one' if required else 'at most one'} {pattern}")
    return found[0] if found else None


def _folder_template(folder: Path) -> LocalTemplate:
    html = _one(folder, "*.html", required=True)
    text = _one(folder, "*.txt", required=False)
    return LocalTemplate(
        name=folder.name,
        subject=_read(folder / "subject").strip(),
        html=_read(cast(Path, html)),
        text=_read(text) if text else None,
        sample_params=_params(folder / "sample_params.json"),
    )


def _file_template(html: Path) -> LocalTemplate:
    stem = html.with_suffix("")
    subject = stem.with_suffix(".subject")
    if not subject.is_file():
        raise typer.BadParameter(f"{html} has no {subject.name} beside it")
    text = stem.with_suffix(".txt")
    return LocalTemplate(
        name=stem.name,
        subject=_read(subject).strip(),
        html=_read(html),
        text=_read(text) if text.is_file() else None,
        sample_params=_params(stem.with_suffix(".params.json")),
    )


def local_templates(folder: Path) -> list[LocalTemplate]:
    """The templates a folder holds, in either layout (see the module's docstring)."""
    if (folder / "subject").is_file():
        return [_folder_template(folder)]
    found = [_file_template(html) for html in sorted(folder.glob("*.html"))]
    found += [
        _folder_template(sub) for sub in sorted(folder.iterdir()) if (sub / "subject").is_file()
    ]
    if not found:
        raise typer.BadParameter(
            f"no template in {folder} (a subject file, or NAME.html + NAME.subject)"
        )
    return found


def _push(mmms: MmmsClient, template: LocalTemplate, stored: dict[str, Any]) -> dict[str, Any]:
    current = stored.get(template.name)
    if current is None:
        return {"action": "created", **mmms.create_template(template.body())}
    same = (current["subject"], current["html"], current["text"]) == (
        template.subject,
        template.html,
        template.text,
    )
    if same and (
        template.sample_params is None or template.sample_params == current["sample_params"]
    ):
        return {"action": "unchanged", **current}
    return {"action": "updated", **mmms.update_template(current["template_id"], template.body())}


@templates_app.command("push")
def templates_push(
    context: typer.Context,
    folders: Annotated[
        list[Path], typer.Argument(help="Template folders.", exists=True, file_okay=False)
    ],
    as_json: JsonFlag = False,
) -> None:
    """Create or update templates from folders of *.html, *.txt and subject files."""
    found = [template for folder in folders for template in local_templates(folder)]
    current = session(context, as_json)
    with current.client() as mmms:
        stored = {t["name"]: dict(t) for t in mmms.templates(limit=1000)}
        pushed = [_push(mmms, template, stored) for template in found]
    if current.json:
        emit_json({"templates": pushed})
        return
    stdout.print(templates_table(pushed))


@templates_app.command("list")
def templates_list(context: typer.Context, as_json: JsonFlag = False) -> None:
    """The latest version of every stored template (all pages)."""
    current = session(context, as_json)
    with current.client() as mmms:
        stored = list(mmms.templates(limit=1000))
    if current.json:
        emit_json({"templates": stored})
        return
    stdout.print(templates_table(stored))


@templates_app.command("preview")
def templates_preview(
    context: typer.Context,
    template_id: Annotated[str, typer.Argument(help="The template's id (tpl_...).")],
    param: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE for a placeholder (repeatable).")
    ] = None,
    to: Annotated[
        str | None, typer.Option(help="The recipient to render for: ADDR or 'Name <ADDR>'.")
    ] = None,
    version: Annotated[int | None, typer.Option(help="A version (default: the latest).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Render a template as it would be sent: subject, text and HTML."""
    body: dict[str, Any] = {"params": key_values(param or [])}
    if to:
        name, mail = mailbox(to)
        body["recipient"] = {"mail": mail, "name": name} if name else {"mail": mail}
    if version is not None:
        body["version"] = version
    current = session(context, as_json)
    with current.client() as mmms:
        data = mmms.preview_template(template_id, cast(m.PreviewRequest, body))
    if current.json:
        emit_json(data)
        return
    stdout.print(f"[bold]Subject:[/] {escape(data['subject'])}", highlight=False)
    stdout.rule("text")
    stdout.print(data["text"], markup=False, highlight=False)
    stdout.rule("html")
    stdout.print(data["html"], markup=False, highlight=False)
