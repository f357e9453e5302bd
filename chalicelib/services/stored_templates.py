"""Stored templates (SPEC 12): saved once, checked once, sent by id.

A template is compiled and rendered with its ``sample_params`` under the render budget when
it is saved, so a template that does not compile, or is hostile (SPEC 11: huge output,
runaway loops), is refused then (413/422), not when mail is sent. ``params`` lists the
placeholders it uses beyond the built-ins. Each ``PUT`` adds an immutable version; archiving
stops new sends (404) while messages already accepted keep the content they were accepted
with.
"""

from __future__ import annotations

import dataclasses
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.errors import NotFoundError, PayloadTooLargeError, RequestValidationError
from chalicelib.repositories.templates import TemplateContent, TemplateRepository, TemplateVersion
from chalicelib.services.paging import decode_cursor, next_cursor
from chalicelib.services.render_budget import RenderBudget, RenderMeter
from chalicelib.services.templates import (
    CompiledTemplates,
    Rendered,
    TemplateLimitError,
    TemplateRenderError,
    placeholders,
)

_ID_ALPHABET = string.ascii_lowercase + string.digits
# The request's names for the template fields (compile errors name the mail fields).
_FIELD_NAMES = {"subject": "subject", "html_template": "html", "text_template": "text"}
SAMPLE_RECIPIENT = {
    "name": "Sample Recipient",
    "mail": "recipient@example.com",
    "company": "Sample Company",
    "emailRecipientId": "sample-recipient",
    "sender_name": "Sample Sender",
    "sender_email": "sender@example.com",
    "sender_organisation_name": "Sample Organisation",
}


def new_template_id() -> str:
    return "tpl_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


@dataclass(frozen=True)
class TemplatePage:
    templates: list[TemplateVersion]
    next_cursor: str | None


class StoredTemplateService:
    def __init__(
        self, repository: TemplateRepository, budget: RenderBudget, max_template_bytes: int
    ) -> None:
        self._repo = repository
        self._budget = budget
        self._max_bytes = max_template_bytes

    def create(self, draft: TemplateContent) -> TemplateVersion:
        return self._repo.create(new_template_id(), self._checked(draft))

    def new_version(self, template_id: str, draft: TemplateContent) -> TemplateVersion:
        content = self._checked(draft)
        saved = self._repo.add_version(template_id, content)
        if saved is None:
            raise _not_found(template_id)
        return saved

    def get(self, template_id: str, version: int | None = None) -> TemplateVersion:
        """A version (default: the latest) of a live template, or 404."""
        found = self._repo.get(template_id, version)
        if found is None:
            raise _not_found(template_id, version)
        return found

    def page(self, cursor: str | None, limit: int) -> TemplatePage:
        after = decode_cursor(cursor)
        after_seq = int(after) if after and after.isdigit() and len(after) < 19 else 0
        rows = self._repo.latest_page(after_seq, limit + 1)
        return TemplatePage(
            templates=rows[:limit], next_cursor=next_cursor([str(r.seq) for r in rows], limit)
        )

    def archive(self, template_id: str) -> None:
        if not self._repo.archive(template_id):
            raise _not_found(template_id)

    def preview(
        self,
        template_id: str,
        *,
        params: dict[str, str],
        recipient: dict[str, str | None],
        version: int | None = None,
    ) -> Rendered:
        """The template rendered as a recipient would get it. What the request leaves out
        comes from the template's ``sample_params`` and a sample recipient, so a preview of
        a saved template always renders."""
        found = self.get(template_id, version)
        content = found.content
        values = {**SAMPLE_RECIPIENT, **{k: v for k, v in recipient.items() if v is not None}}
        filled = {**_by_name(content.params), **content.sample_params, **params}
        return _render(content, values, filled, RenderMeter(self._budget))

    def _checked(self, draft: TemplateContent) -> TemplateContent:
        """The draft (as a request gives it), compiled and rendered once with its samples
        under the budget, with the ``params`` it uses."""
        size = sum(len((t or "").encode("utf-8")) for t in (draft.subject, draft.html, draft.text))
        if size > self._max_bytes:
            raise PayloadTooLargeError(
                f"the template is {size} bytes; at most {self._max_bytes} (MAX_TEMPLATE_BYTES)"
            )
        content = dataclasses.replace(
            draft, params=placeholders(draft.subject, draft.html, draft.text)
        )
        filled = {**_by_name(content.params), **draft.sample_params}
        _render(content, SAMPLE_RECIPIENT, filled, RenderMeter(self._budget))
        return content


def _by_name(params: list[str]) -> dict[str, str]:
    """A stand-in value for each param: its own name."""
    return {name: name for name in params}


def _render(
    content: TemplateContent,
    values: Mapping[str, str | None],
    params: dict[str, str],
    meter: RenderMeter,
) -> Rendered:
    try:
        compiled = CompiledTemplates(content.subject, content.html, content.text)
    except TemplateRenderError as err:
        field = _FIELD_NAMES.get(err.field or "", "html")
        raise RequestValidationError(
            [{"type": "template_error", "loc": [field], "msg": str(err), "input": None}],
            message="The template does not compile",
        ) from err
    try:
        return compiled.render(values, meter, params)
    except TemplateLimitError as err:
        detail = {
            "type": "template_budget",
            "loc": ["html"],
            "msg": str(err),
            "input": None,
            "ctx": {"limit": err.setting},
        }
        if err.too_large:
            raise PayloadTooLargeError(f"{err} ({err.setting})", details=[detail]) from err
        raise RequestValidationError(
            [detail], message=f"Template over budget: {err.setting}"
        ) from err
    except TemplateRenderError as err:
        raise RequestValidationError(
            [{"type": "template_error", "loc": ["html"], "msg": str(err), "input": None}],
            message="The template could not be rendered",
        ) from err


def _not_found(template_id: str, version: int | None = None) -> NotFoundError:
    what = f"version {version} of template {template_id}" if version else f"template {template_id}"
    return NotFoundError(f"No {what} (unknown or archived)")
