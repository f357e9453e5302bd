"""Rendering ``{{name}}``-style templates for one recipient, safely.

Jinja2's sandbox renders the templates: no attribute access to Python internals, no
imports. The HTML part autoescapes every substituted value (a recipient named
``<script>`` arrives as text); the text part and the subject do not. An unknown placeholder
is an error (StrictUndefined), never a blank. The plain-text part is derived from the HTML
when no ``text_template`` is given.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser

from jinja2 import StrictUndefined, Template, TemplateError, meta

from chalicelib.models.templates import BUILT_IN_PLACEHOLDERS
from chalicelib.services.render_budget import (
    BudgetedSandbox,
    RenderLimitError,
    RenderMeter,
    render_stream,
)

PLACEHOLDERS = BUILT_IN_PLACEHOLDERS

_html_env = BudgetedSandbox(undefined=StrictUndefined, autoescape=True)
_text_env = BudgetedSandbox(undefined=StrictUndefined, autoescape=False)


# What a template's expressions can raise while they run (the template is the caller's code).
_EXPRESSION_ERRORS = (ArithmeticError, TypeError, ValueError, LookupError, AttributeError)


class TemplateRenderError(ValueError):
    """A template could not be compiled or rendered; the message says why, for the caller.

    ``field`` names the template that does not compile (``subject``, ``html_template``,
    ``text_template``); it is None when rendering failed for one recipient's values.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TemplateLimitError(TemplateRenderError):
    """Rendering went over a budget (``chalicelib.services.render_budget``): ``setting``
    names the limit; ``too_large`` when the message itself is over ``MAX_MESSAGE_BYTES``."""

    def __init__(self, err: RenderLimitError) -> None:
        super().__init__(f"template over budget ({err.setting}): {err}")
        self.setting = err.setting
        self.too_large = err.too_large


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


class CompiledTemplates:
    """An email's templates, compiled once and rendered per recipient."""

    def __init__(self, subject: str, html_template: str, text_template: str | None) -> None:
        self._subject = _compile(_text_env, subject, "subject")
        self._html = _compile(_html_env, html_template, "html_template")
        self._text = _compile(_text_env, text_template, "text_template") if text_template else None

    def render(
        self,
        values: Mapping[str, str | None],
        meter: RenderMeter | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Rendered:
        """One recipient's message, rendered under ``meter`` (a fresh default one if None).

        ``values`` fill the built-in placeholders, ``params`` the others (a param never
        shadows a built-in: the request models refuse those names)."""
        meter = meter or RenderMeter()
        meter.start_message()
        context = {**(params or {}), **{key: values.get(key) or "" for key in PLACEHOLDERS}}
        try:
            subject = render_stream(self._subject.generate(context), meter)
            body = render_stream(self._html.generate(context), meter)
            if self._text:
                text = render_stream(self._text.generate(context), meter)
            else:
                text = html_to_text(body, meter)
                meter.emit(text)
        except RenderLimitError as err:
            raise TemplateLimitError(err) from err
        except TemplateError as err:
            raise TemplateRenderError(f"template error: {err}") from err
        except _EXPRESSION_ERRORS as err:  # the template's own expressions: 1/0, 'a' + 1, ...
            raise TemplateRenderError(f"template error: {type(err).__name__}: {err}") from err
        if "\r" in subject or "\n" in subject:
            raise TemplateRenderError("the rendered subject contains a line break (CR/LF)")
        return Rendered(subject=subject, html=body, text=text)


def placeholders(*sources: str | None) -> list[str]:
    """The names the templates read that are neither built-in placeholders nor globals
    (``range``...): the ``params`` they expect, sorted. Sources that do not parse are
    skipped (compiling them reports the error)."""
    found: set[str] = set()
    for source in sources:
        if not source:
            continue
        try:
            found |= meta.find_undeclared_variables(_text_env.parse(source))
        except TemplateError:
            continue
    return sorted(found - set(PLACEHOLDERS) - set(_text_env.globals))


def _compile(env: BudgetedSandbox, source: str, field: str) -> Template:
    try:
        template: Template = env.from_string(source)
        return template
    except TemplateError as err:
        raise TemplateRenderError(f"{field} does not compile: {err}", field=field) from err


_BLOCKS = frozenset(
    {
        "p",
        "div",
        "br",
        "tr",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "ul",
        "ol",
        "blockquote",
        "hr",
        "section",
        "article",
        "header",
        "footer",
    }
)
_SKIPPED = frozenset({"script", "style", "head", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self._links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip_depth += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self._links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "a" and self._links:
            href = self._links.pop()
            if href and not href.startswith(("#", "mailto:")):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(re.sub(r"\s+", " ", data))


_FEED_CHUNK = 64 * 1024


def html_to_text(markup: str, meter: RenderMeter | None = None) -> str:
    """A readable plain-text version of an HTML body (paragraphs, list items, link targets).

    Fed in chunks under ``meter``, so a large body counts against the render budget."""
    meter = meter or RenderMeter()
    parser = _TextExtractor()
    for start in range(0, len(markup), _FEED_CHUNK):
        meter.tick()
        meter.allow_size(min(_FEED_CHUNK, len(markup) - start), "the text part")
        parser.feed(markup[start : start + _FEED_CHUNK])
    parser.close()
    lines = (line.strip() for line in html.unescape("".join(parser.parts)).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
