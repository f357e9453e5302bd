"""The render meter on its own: budgets trip where they should, ordinary templates pass."""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Iterator

import pytest
from jinja2 import StrictUndefined, TemplateAssertionError, UndefinedError
from jinja2.exceptions import SecurityError

from chalicelib.services.render_budget import (
    BudgetedSandbox,
    RenderBudget,
    RenderLimitError,
    RenderMeter,
    current_meter,
    render_stream,
)
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


# --- each limit at its edge: the budget spent to the last unit passes, one more is refused ---

NAMES = {"name": "Ann", "company": "ACME"}
# Numbers of a known size in bits: 2**32767 has 32,768 bits, 2**32768 has 32,769.
BITS_32768, BITS_32769, BITS_65537 = 2**32767, 2**32768, 2**65536


def metered(source: str, budget: RenderBudget | None = None, **values: object) -> str:
    """``source`` rendered alone (no subject or text part) under a fresh meter."""
    meter = RenderMeter(budget or RenderBudget())
    template = sandbox().from_string(source)
    return render_stream(template.generate({**NAMES, **values}), meter)


def sandbox() -> BudgetedSandbox:
    """A sandbox of the test's own: built when the test runs, not when the module is imported."""
    return BudgetedSandbox(undefined=StrictUndefined, autoescape=False)


def refusal(source: str, budget: RenderBudget, **values: object) -> RenderLimitError:
    with pytest.raises(RenderLimitError) as refused:
        metered(source, budget, **values)
    return refused.value


def test_the_operation_budget_is_spent_to_the_last_operation() -> None:
    meter = RenderMeter(RenderBudget(max_operations=3))
    meter.tick()
    meter.tick(2)

    with pytest.raises(RenderLimitError) as refused:
        meter.tick()

    assert str(refused.value) == (
        "the template needs more than 3 operations (loop iterations, calls, filters) to render"
    )
    assert (refused.value.setting, refused.value.too_large) == ("MAX_RENDER_OPERATIONS", False)


def test_the_clock_is_read_on_the_first_operation_and_every_thousandth_after() -> None:
    meter = RenderMeter(RenderBudget(max_seconds=60.0))
    meter.tick()  # operation 1 reads the clock: in time
    meter.started -= 120.0  # two minutes go by
    for _ in range(999):
        meter.tick()  # operations 2 to 1000 do not read it

    with pytest.raises(RenderLimitError) as refused:
        meter.tick()  # operation 1001 does

    assert str(refused.value) == "rendering took longer than 60.0 s"
    assert (refused.value.setting, refused.value.too_large) == ("MAX_RENDER_SECONDS", False)


def test_a_render_started_in_time_is_not_stopped_by_the_clock() -> None:
    meter = RenderMeter(RenderBudget(max_seconds=60.0))
    for _ in range(2001):
        meter.tick()
    assert meter.operations == 2001


def test_a_value_as_large_as_a_message_is_allowed_and_one_byte_more_refused() -> None:
    meter = RenderMeter(RenderBudget(max_message_bytes=10, max_work_bytes=100))
    meter.allow_size(10)

    with pytest.raises(RenderLimitError) as refused:
        meter.allow_size(11)

    assert str(refused.value) == "a value of 11 bytes would exceed the message limit of 10 bytes"
    assert (refused.value.setting, refused.value.too_large) == ("MAX_MESSAGE_BYTES", True)
    assert meter.work_bytes == 10  # what was refused was not built, so it is not counted


def test_work_bytes_add_up_to_their_limit_and_no_further() -> None:
    meter = RenderMeter(RenderBudget(max_message_bytes=10, max_work_bytes=25))
    for size in (10, 10, 5):
        meter.allow_size(size, "a part")

    with pytest.raises(RenderLimitError) as refused:
        meter.allow_size(1, "a part")

    assert str(refused.value) == "rendering would produce more than 25 bytes of intermediate text"
    assert (refused.value.setting, refused.value.too_large) == ("MAX_RENDER_WORK_BYTES", False)


def test_the_output_fills_the_message_to_its_last_byte_and_each_message_starts_empty() -> None:
    meter = RenderMeter(RenderBudget(max_message_bytes=5))
    meter.emit("abc")
    meter.emit("de")
    with pytest.raises(RenderLimitError) as refused:
        meter.emit("f")
    assert str(refused.value) == "the rendered message exceeds 5 bytes"
    assert (refused.value.setting, refused.value.too_large) == ("MAX_MESSAGE_BYTES", True)

    meter.start_message()
    meter.emit("abcde")
    assert meter.message_bytes == 5


@pytest.mark.parametrize("number", [5, -5, True, "123456", 5.5])
def test_numbers_up_to_the_operation_budget_either_way_are_allowed(number: object) -> None:
    RenderMeter(RenderBudget(max_operations=5)).allow_number(number)


def test_a_true_is_not_a_number_even_with_no_operations_left() -> None:
    RenderMeter(RenderBudget(max_operations=0)).allow_number(True)


@pytest.mark.parametrize("number", [6, -6])
def test_a_number_beyond_the_operation_budget_is_refused(number: int) -> None:
    with pytest.raises(RenderLimitError) as refused:
        RenderMeter(RenderBudget(max_operations=5)).allow_number(number)
    assert str(refused.value) == (
        f"the number {number} is larger than the template budget allows (5)"
    )
    assert (refused.value.setting, refused.value.too_large) == ("MAX_RENDER_OPERATIONS", False)


def test_outside_a_render_one_meter_on_the_default_budget_is_kept() -> None:
    def two_lookups() -> tuple[RenderMeter, RenderMeter]:
        return current_meter(), current_meter()

    first, second = contextvars.Context().run(two_lookups)

    assert first is second
    assert first.budget == RenderBudget()


def test_a_render_meters_its_own_chunks_and_gives_the_meter_back_after() -> None:
    def render_inside() -> tuple[RenderMeter, RenderMeter, RenderMeter, str]:
        before = current_meter()
        seen: list[RenderMeter] = []

        def chunks() -> Iterator[str]:
            seen.append(current_meter())
            yield "ab"
            yield "c"

        text = render_stream(chunks(), meter)
        return before, seen[0], current_meter(), text

    meter = RenderMeter()
    before, during, after, text = contextvars.Context().run(render_inside)

    assert text == "abc"
    assert during is meter
    assert after is before
    assert meter.message_bytes == 3


def test_macros_calling_themselves_without_end_are_a_limit_error() -> None:
    error = refusal(
        "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
        RenderBudget(max_operations=10**9),
    )
    assert str(error) == "the template recurses too deeply (macros calling themselves)"
    assert (error.setting, error.too_large) == ("recursion", False)


# What each construct costs: the rendered text, then the operations and work bytes it spends
# (so it renders on exactly that budget and is refused one below, naming the limit).
COSTS = [
    ("{% for c in name %}{{ c }}.{% endfor %}", "A.n.n.", 4, 0),  # the loop's call + 3
    ("{% macro m() %}x{% endmacro %}{{ m() }}", "x", 10, 1),
    ("{{ name.upper() }}", "ANN", 1, 3),
    ("{{ name|upper }}", "ANN", 1, 3),
    ("{{ name.split('n')|length }}", "3", 2, 3),
    ("{{ name.split('n', 1)|length }}", "2", 2, 2),  # not a replace() for having two arguments
    ("{{ name.startswith(('x', 'A')) }}", "True", 1, 0),  # nor a join() for taking a tuple
    ("{{ name * 3 }}", "AnnAnnAnn", 1, 9),
    ("{{ 3 * name }}", "AnnAnnAnn", 1, 9),
    ("{{ ([name, company] * 3)|length }}", "6", 2, 6),
    ("{% set s = name * -2 %}{{ s }}.", ".", 1, 0),
    ("{{ 2 * 3 }}", "6", 2, 0),  # the operator, then the number's size
    ("{{ 2.5 * 2 }}", "5.0", 1, 0),
    ("{{ name + company }}", "AnnACME", 1, 7),
    ("{{ 2 + 3 }}", "5", 1, 0),
    ("{{ ([name] + [company, name])|length }}", "3", 2, 3),
    ("{{ 2 ** 3 }}", "8", 2, 0),
    ("{{ 2.0 ** 3 }}", "8.0", 1, 0),
    ("{{ 7 % 4 }}", "3", 1, 0),
    ("{{ name ~ company }}", "AnnACME", 1, 14),  # the ~ and the call it is made of
    ("{{ '%5s' % name }}", "  Ann", 1, 11),
    ("{{ name.replace('n', 'nn') }}", "Annnn", 1, 10),  # sized before, then the result
    ("{{ name|replace('n', 'nn') }}", "Annnn", 1, 10),
    ("{{ ', '.join([name, company]) }}", "Ann, ACME", 1, 18),
    ("{{ [name, company]|join(', ') }}", "Ann, ACME", 1, 18),
    ("{{ '-'.join(name) }}", "A-n-n", 1, 5),  # a string's join is sized after only
    ("{{ range(1)|length }}", "1", 2, 0),
]


@pytest.mark.parametrize(
    ("template", "output", "operations", "work"), COSTS, ids=[c[0] for c in COSTS]
)
def test_each_construct_renders_on_exactly_what_it_costs(
    template: str, output: str, operations: int, work: int
) -> None:
    exact = RenderBudget(max_operations=operations, max_work_bytes=work)
    assert metered(template, exact) == output

    over = refusal(template, dataclasses.replace(exact, max_operations=operations - 1))
    assert str(over) == (
        f"the template needs more than {operations - 1} operations"
        " (loop iterations, calls, filters) to render"
    )
    if work:
        over = refusal(template, dataclasses.replace(exact, max_work_bytes=work - 1))
        assert str(over) == (
            f"rendering would produce more than {work - 1} bytes of intermediate text"
        )


# What each construct would make, sized before it is made (or, for a call's or filter's
# result, right after): it renders when the message limit is that size, and one byte less
# refuses it saying what it was and how large.
SIZES = [
    ("{{ name * 3 }}", "AnnAnnAnn", 9, "a repeated string or list"),
    ("{{ 3 * name }}", "AnnAnnAnn", 9, "a repeated string or list"),
    ("{{ ([name] * 4)|length }}", "4", 4, "a repeated string or list"),
    ("{{ name + company }}", "AnnACME", 7, "a sum of strings or lists"),
    ("{{ ([name] + [company, name])|length }}", "3", 3, "a sum of strings or lists"),
    ("{{ name ~ company }}", "AnnACME", 7, "a ~ concatenation"),
    ("{{ 1 ~ 23 }}", "123", 3, "a ~ concatenation"),
    # %: the template, every width and precision, and the arguments as text
    ("{{ '%5s' % name }}", "  Ann", 3 + 5 + 3, "a %-formatted string"),
    ("{{ '%*s' % (5, name) }}", "  Ann", 3 + 5 + len("(5, 'Ann')"), "a %-formatted string"),
    ("{{ '%*s' % (-5, name) }}", "Ann  ", 3 + 5 + len("(-5, 'Ann')"), "a %-formatted string"),
    ("{{ '%.2f' % 1.5 }}", "1.50", 4 + 2 + 3, "a %-formatted string"),
    ("{{ '%6.2f' % 1.5 }}", "  1.50", 5 + 8 + 3, "a %-formatted string"),
    ("{{ '%.*f' % (2, 1.5) }}", "1.50", 4 + 2 + len("(2, 1.5)"), "a %-formatted string"),
    ("{{ '%(n)4s' % {'n': name} }}", " Ann", 6 + 4 + len("{'n': 'Ann'}"), "a %-formatted string"),
    ("{{ '%-05d' % 7 }}", "7    ", 5 + 5 + 1, "a %-formatted string"),
    (
        "{{ '%*s%*s' % (2, 'a', 7, 'b') }}",  # every * counted as the largest number given
        " a      b",
        6 + 7 + 7 + len("(2, 'a', 7, 'b')"),
        "a %-formatted string",
    ),
    ("{{ '%d%%' % 7 }}", "7%", 4 + 0 + 1, "a %-formatted string"),
    # replace: the text plus, per occurrence, the difference (an empty old matches len + 1 times)
    ("{{ name.replace('n', 'nn') }}", "Annnn", 3 + 2 * 1, "a replace() result"),
    ("{{ name.replace('', '-') }}", "-A-n-n-", 3 + 4 * 1, "a replace() result"),
    ("{{ name.replace('n', '') }}", "A", 3 - 2 * 1, "a replace() result"),
    ("{{ name|replace('n', 'nn') }}", "Annnn", 5, "a replace() result"),
    ("{{ name|replace('', '-') }}", "-A-n-n-", 7, "a replace() result"),
    # join: the items as text plus a separator between each two
    ("{{ ', '.join(['ab', 'c', 'de']) }}", "ab, c, de", 5 + 2 * 2, "a join() result"),
    ("{{ '--'.join([name]) }}", "Ann", 3, "a join() result"),
    ("{{ '-'.join((name, company)) }}", "Ann-ACME", 8, "a join() result"),
    ("{{ '-'.join([1, 22]) if false else 'x' * 4 }}", "xxxx", 4, "a repeated string or list"),
    ("{{ [name, company]|join(', ') }}", "Ann, ACME", 9, "a join() result"),
    ("{{ [name, company]|join(d='; ') }}", "Ann; ACME", 9, "a join() result"),
    ("{{ [name, company]|join }}", "AnnACME", 7, "a join() result"),
    # what can only be measured once made
    ("{{ '-'.join(name) }}", "A-n-n", 5, "a call's result"),
    ("{{ name.upper() }}", "ANN", 3, "a call's result"),
    ("{{ name.split('n')|length }}", "3", 3, "a call's result"),
    ("{{ name|upper }}", "ANN", 3, "the upper filter's result"),
    ("{{ name|list|length }}", "3", 3, "the list filter's result"),
]


@pytest.mark.parametrize(("template", "output", "size", "what"), SIZES, ids=[s[0] for s in SIZES])
def test_each_result_fits_a_message_of_its_size_and_not_one_byte_less(
    template: str, output: str, size: int, what: str
) -> None:
    assert metered(template, RenderBudget(max_message_bytes=size)) == output

    error = refusal(template, RenderBudget(max_message_bytes=size - 1))

    assert str(error) == (
        f"{what} of {size} bytes would exceed the message limit of {size - 1} bytes"
    )
    assert (error.setting, error.too_large) == ("MAX_MESSAGE_BYTES", True)


@pytest.mark.parametrize(
    "template",
    [
        "{{ '-----'.join([]) }}",
        "{{ nobody|join('-----') }}",
        "{% set s = name * -2 %}{{ s }}",
        "{% set s = [name] * 0 %}{{ s|join }}",
    ],
)
def test_what_makes_nothing_fits_an_empty_message(template: str) -> None:
    assert metered(template, RenderBudget(max_message_bytes=0), nobody=[]) == ""


def test_a_number_of_64_kibit_is_computed_and_one_bit_more_refused() -> None:
    budget = RenderBudget()
    assert metered("{{ (a * a).bit_length() }}", budget, a=BITS_32768) == "65535"
    assert metered("{{ 1 ** 65536 }}", budget) == "1"
    assert metered("{{ a ** 0 }}", budget, a=BITS_65537) == "1"
    assert metered("{{ a ** -1 > 0 }}", budget, a=2) == "True"

    for template, values in [
        ("{{ (a * b).bit_length() }}", {"a": BITS_32768, "b": BITS_32769}),
        ("{{ 1 ** 65537 }}", {}),
        ("{{ (a ** 1).bit_length() }}", {"a": BITS_65537}),
    ]:
        error = refusal(template, budget, **values)
        assert str(error) == "a number in the template would be too large to compute"
        assert (error.setting, error.too_large) == ("MAX_RENDER_OPERATIONS", False)


@pytest.mark.parametrize(
    ("template", "error", "size"),
    [
        ("{{ name ** 2 }}", "unsupported operand", 3),
        ("{{ '%*s' % name }}", "\\* wants int", len("%*s") + len("Ann")),
    ],
)
def test_an_operation_python_refuses_is_its_error_not_a_size_refusal(
    template: str, error: str, size: int
) -> None:
    with pytest.raises(TypeError, match=error):
        metered(template, RenderBudget(max_message_bytes=size))


def test_range_refuses_a_bound_or_a_length_over_the_operation_budget() -> None:
    budget = RenderBudget(max_operations=5)
    assert metered("{{ range(-3, 2)|join(',') }}", budget) == "-3,-2,-1,0,1"
    assert metered("{{ range(5, 0, -1)|join(',') }}", budget) == "5,4,3,2,1"

    for template, number in [
        ("{{ range(6) }}", 6),
        ("{{ range(-6, 0) }}", -6),
        ("{{ range(-5, 5)|length }}", 10),
    ]:
        error = refusal(template, budget)
        assert str(error) == f"the number {number} is larger than the template budget allows (5)"


def test_every_argument_of_a_call_or_filter_is_held_to_the_operation_budget() -> None:
    budget = RenderBudget(max_operations=5)
    assert metered("{{ 'a b c'.split(' ', 5) }}", budget) == "['a', 'b', 'c']"

    for template, number in [
        ("{{ 'a b'.split(' ', 6) }}", 6),
        ("{{ 'a b'.split(maxsplit=7) }}", 7),
        ("{{ name|truncate(8) }}", 8),
        ("{{ name|truncate(length=9) }}", 9),
    ]:
        error = refusal(template, budget)
        assert str(error) == f"the number {number} is larger than the template budget allows (5)"


@pytest.mark.parametrize("arguments", ["", "10**6", "10**6, 7"])
def test_calling_what_is_missing_or_unsafe_says_so_whatever_the_arguments(arguments: str) -> None:
    budget = RenderBudget(max_operations=5)
    with pytest.raises(UndefinedError, match="'nothing' is undefined"):
        metered(f"{{{{ nothing({arguments}) }}}}", budget)
    with pytest.raises(SecurityError, match="'ljust' of 'str' object is unsafe"):
        metered(f"{{{{ name.ljust({arguments}) }}}}", budget)


@pytest.mark.parametrize(
    "method", ["center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map"]
)
def test_string_methods_that_pad_or_format_are_unsafe(method: str) -> None:
    with pytest.raises(SecurityError, match=f"'{method}' of 'str' object is unsafe"):
        metered(f"{{{{ name.{method}(2) }}}}")


def test_other_values_keep_attributes_named_like_padding_methods() -> None:
    @dataclasses.dataclass
    class Box:
        center: str = "middle"
        format: str = "A4"

    assert metered("{{ box.center }} {{ box.format }}", box=Box()) == "middle A4"


def test_a_str_format_handed_in_by_another_value_is_unsafe_too() -> None:
    @dataclasses.dataclass
    class Box:
        pad: Callable[..., str] = "{:>9}".format

    with pytest.raises(SecurityError, match="'format' of 'str' object is unsafe"):
        metered("{{ box.pad(name) }}", box=Box())


def test_the_meters_own_generator_keeps_its_frame_to_itself() -> None:
    with pytest.raises(SecurityError, match="'gi_frame' of 'generator' object is unsafe"):
        metered("{{ __mmms_loop(name).gi_frame.f_globals }}")


@pytest.mark.parametrize("name", ["lipsum", "cycler", "joiner"])
def test_text_generating_globals_are_gone(name: str) -> None:
    with pytest.raises(UndefinedError, match=f"'{name}' is undefined"):
        metered(f"{{{{ {name}() }}}}")


@pytest.mark.parametrize(
    "name", ["center", "indent", "wordwrap", "format", "pprint", "batch", "slice", "sum"]
)
def test_padding_and_generating_filters_are_gone(name: str) -> None:
    with pytest.raises(TemplateAssertionError, match=f"No filter named '{name}'"):
        sandbox().from_string(f"{{{{ name|{name} }}}}")
