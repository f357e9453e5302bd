from __future__ import annotations

import pytest

from chalicelib.services.templates import CompiledTemplates, TemplateRenderError, html_to_text


def test_html_escapes_values_but_text_and_subject_do_not() -> None:
    rendered = CompiledTemplates("Hi {{name}}", "<p>{{name}}</p>", "Dear {{name}}").render(
        {"name": "<Tom & Jerry>"}
    )

    assert rendered.html == "<p>&lt;Tom &amp; Jerry&gt;</p>"
    assert rendered.text == "Dear <Tom & Jerry>"
    assert rendered.subject == "Hi <Tom & Jerry>"


def test_missing_values_render_empty_and_unknown_placeholders_fail() -> None:
    templates = CompiledTemplates("s", "<p>{{company}}|{{name}}</p>", None)

    assert templates.render({"name": "A"}).html == "<p>|A</p>"
    with pytest.raises(TemplateRenderError, match="surname"):
        CompiledTemplates("s", "{{surname}}", None).render({})


def test_the_sandbox_refuses_python_internals() -> None:
    with pytest.raises(TemplateRenderError, match="unsafe"):
        CompiledTemplates("s", "{{ name.__class__.__mro__ }}", None).render({"name": "x"})


def test_syntax_errors_name_the_template() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        CompiledTemplates("s", "ok", "{% if %}")
    assert caught.value.field == "text_template"


def test_text_part_from_html() -> None:
    markup = (
        "<html><head><style>p{}</style></head><body><h1>Hello &amp; welcome</h1>"
        "<p>Read <a href='https://x.example/a'>this</a>.</p><ul><li>one</li><li>two</li>"
        "</ul><script>alert(1)</script></body></html>"
    )

    assert html_to_text(markup) == (
        "Hello & welcome\n\nRead this (https://x.example/a).\n\n- one\n\n- two\n"
    )
