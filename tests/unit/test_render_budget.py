"""The render meter on its own: budgets trip where they should, ordinary templates pass."""

from __future__ import annotations

import pytest

from chalicelib.services.render_budget import RenderBudget, RenderMeter
from chalicelib.services.templates import CompiledTemplates, TemplateLimitError

VALUES = {"name": "Ann", "company": "ACME", "mail": "ann@example.org"}


def render(html: str, budget: RenderBudget | None = None) -> str:
    return (
        CompiledTemplates("s", html, "t").render(VALUES, RenderMeter(budget or RenderBudget())).html
    )


def test_one_meter_is_shared_by_every_recipient_of_a_request() -> None:
    templates = CompiledTemplates("s", "{% for i in range(40) %}x{% endfor %}", "t")
    meter = RenderMeter(RenderBudget(max_operations=100))
    templates.render(VALUES, meter)
    templates.render(VALUES, meter)
    with pytest.raises(TemplateLimitError) as refused:
        templates.render(VALUES, meter)
    assert refused.value.setting == "MAX_RENDER_OPERATIONS"


def test_the_message_size_counts_every_part() -> None:
    budget = RenderBudget(max_message_bytes=100)
    assert render("x" * 50, budget) == "x" * 50  # subject 1 + html 50 + text 1
    with pytest.raises(TemplateLimitError) as refused:
        CompiledTemplates("s", "x" * 60, "y" * 60).render(VALUES, RenderMeter(budget))
    assert (refused.value.setting, refused.value.too_large) == ("MAX_MESSAGE_BYTES", True)


def test_work_bytes_bound_what_is_built_and_thrown_away() -> None:
    budget = RenderBudget(max_work_bytes=10_000)
    template = "{% for i in range(100) %}{% set s = name * 500 %}{% endfor %}done"
    with pytest.raises(TemplateLimitError) as refused:
        render(template, budget)
    assert refused.value.setting == "MAX_RENDER_WORK_BYTES"


def test_the_clock_is_a_safety_net() -> None:
    budget = RenderBudget(max_seconds=0.0)
    with pytest.raises(TemplateLimitError) as refused:
        render("{% for i in range(5000) %}{% endfor %}", budget)
    assert refused.value.setting == "MAX_RENDER_SECONDS"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ name|upper }} {{ company|lower|title }}", "ANN Acme"),
        ("{{ [name, company]|join(', ') }}", "Ann, ACME"),
        ("{{ name|replace('n', 'nn') }}", "Annnn"),
        ("{{ 'a' ~ name ~ 'b' }}", "aAnnb"),
        ("{% for c in name %}{{ c }}.{% endfor %}", "A.n.n."),
        ("{{ (name * 2)|length }} {{ 2 ** 10 }} {{ '%5s' % name }}", "6 1024   Ann"),
        ("<b>{{ '<i>' ~ name }}</b>", "<b>&lt;i&gt;Ann</b>"),
    ],
)
def test_ordinary_templates_render_as_before(template: str, expected: str) -> None:
    assert render(template) == expected
