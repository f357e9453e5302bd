"""A bounded Jinja2 sandbox: every key holder writes templates, so rendering has a budget.

Jinja's sandbox stops templates from reaching Python internals, but not from spending: a
template can ask for ``'a' * 10**9``, ``lipsum(10**6)``, ``range(10**8)`` or loops within
loops. Here every way a template can spend is metered against one :class:`RenderMeter`
(one per API request, one per queued message in the consumer):

- **output**: each part is rendered as a stream and refused as soon as the message passes
  ``max_message_bytes`` (``MAX_MESSAGE_BYTES``): never built first and measured after;
- **operations** (``MAX_RENDER_OPERATIONS``): every loop iteration, call, filter and
  operator counts one, a macro call ten (it costs about ten times as much); ``range`` and
  numeric arguments larger than the budget are refused before they run;
- **work bytes** (``MAX_RENDER_WORK_BYTES``): every string or list an operator, ``~``, call
  or filter produces counts its size, and a result larger than a message is refused before
  it is built where its size can be known (``*``, ``+``, ``~``, ``%``, ``replace``,
  ``join``), after otherwise; so CPU and memory stay proportional to the budget;
- **time** (``MAX_RENDER_SECONDS``): a safety net checked at every operation.

What only generates text or pads it is not available: the globals ``lipsum``, ``cycler`` and
``joiner``; the filters ``center``, ``indent``, ``wordwrap``, ``format``, ``pprint``,
``batch``, ``slice`` and ``sum``; the string methods that pad or format (``center``,
``ljust``, ``rjust``, ``zfill``, ``expandtabs``, ``format``, ``format_map``). Using one is
a template error (422). Macro recursion deeper than Python allows is a limit error too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Macro, Undefined, markup_join
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer


@dataclass(frozen=True)
class RenderBudget:
    """The limits of one meter; built from the settings, which hold the defaults."""

    max_message_bytes: int = 10 * 1024 * 1024
    max_operations: int = 500_000
    max_work_bytes: int = 256 * 1024 * 1024
    max_seconds: float = 10.0


class RenderLimitError(Exception):
    """Rendering went over a budget. ``setting`` names the limit; ``too_large`` says whether
    the message itself was too large (413) rather than too costly to make (422)."""

    def __init__(self, message: str, setting: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.setting = setting
        self.too_large = too_large


@dataclass
class RenderMeter:
    """What renders have spent so far against ``budget`` (not thread-safe: one per task)."""

    budget: RenderBudget = field(default_factory=RenderBudget)
    operations: int = 0
    work_bytes: int = 0
    message_bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    _next_clock_check: int = 0

    def start_message(self) -> None:
        self.message_bytes = 0

    def tick(self, count: int = 1) -> None:
        self.operations += count
        if self.operations > self.budget.max_operations:
            raise RenderLimitError(
                f"the template needs more than {self.budget.max_operations} operations"
                " (loop iterations, calls, filters) to render",
                "MAX_RENDER_OPERATIONS",
            )
        if self.operations < self._next_clock_check:
            return
        self._next_clock_check = self.operations + 1000
        if time.monotonic() - self.started > self.budget.max_seconds:
            raise RenderLimitError(
                f"rendering took longer than {self.budget.max_seconds} s", "MAX_RENDER_SECONDS"
            )

    def allow_size(self, size: int, what: str = "a value") -> None:
        """Refuse a string or list of ``size`` before it is built, and count the work."""
        if size > self.budget.max_message_bytes:
            raise RenderLimitError(
                f"{what} of {size} bytes would exceed the message limit of"
                f" {self.budget.max_message_bytes} bytes",
                "MAX_MESSAGE_BYTES",
                too_large=True,
            )
        self.work_bytes += size
        if self.work_bytes > self.budget.max_work_bytes:
            raise RenderLimitError(
                f"rendering would produce more than {self.budget.max_work_bytes} bytes of"
                " intermediate text",
                "MAX_RENDER_WORK_BYTES",
            )

    def emit(self, chunk: str) -> None:
        """Count rendered output; refuse the message as soon as it passes the limit."""
        self.message_bytes += len(chunk)
        if self.message_bytes > self.budget.max_message_bytes:
            raise RenderLimitError(
                f"the rendered message exceeds {self.budget.max_message_bytes} bytes",
                "MAX_MESSAGE_BYTES",
                too_large=True,
            )

    def allow_number(self, value: object) -> None:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and abs(value) > self.budget.max_operations
        ):
            raise RenderLimitError(
                f"the number {value} is larger than the template budget allows"
                f" ({self.budget.max_operations})",
                "MAX_RENDER_OPERATIONS",
            )


_METER: ContextVar[RenderMeter | None] = ContextVar("mmms_render_meter", default=None)


def current_meter() -> RenderMeter:
    meter = _METER.get()
    if meter is None:  # rendering outside render_with: still bounded, by the defaults
        meter = RenderMeter()
        _METER.set(meter)
    return meter


def render_stream(chunks: Iterable[str], meter: RenderMeter) -> str:
    """Join a template's output stream under ``meter`` (the message size counted as it grows)."""
    token = _METER.set(meter)
    try:
        parts = []
        for chunk in chunks:
            meter.emit(chunk)
            parts.append(chunk)
        return "".join(parts)
    except RecursionError as err:
        raise RenderLimitError(
            "the template recurses too deeply (macros calling themselves)", "recursion"
        ) from err
    finally:
        _METER.reset(token)


# --- the environment -------------------------------------------------------------------

# A macro call costs about ten loop iterations (measured): it counts as ten operations.
MACRO_CALL_COST = 10
_REMOVED_GLOBALS = ("lipsum", "cycler", "joiner")
_REMOVED_FILTERS = ("center", "indent", "wordwrap", "format", "pprint", "batch", "slice", "sum")
_UNSAFE_STR_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map"}
)
# A %-conversion's width and precision: digits, or * (then taken from the arguments).
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_SEQUENCES = (str, list, tuple)


def _size(value: object) -> int:
    return len(value) if isinstance(value, _SEQUENCES) else 0


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    meter = current_meter()
    for item in iterable:
        meter.tick()
        yield item


def _concat(*items: Any) -> Any:
    current_meter().allow_size(sum(len(str(item)) for item in items), "a ~ concatenation")
    return markup_join(items)


def _range(*args: int) -> range:
    meter = current_meter()
    for arg in args:
        meter.allow_number(arg)
    numbers = range(*args)
    if len(numbers) > meter.budget.max_operations:
        meter.allow_number(len(numbers))
    return numbers


class _Metered(NodeTransformer):
    """Rewrites loops and ``~`` so they go through the meter (see the module doc)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.Name("__mmms_loop", "load"), [node.iter], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(
            nodes.Name("__mmms_concat", "load"),
            list(node.nodes),
            [],
            None,
            None,
            lineno=node.lineno,
        )


class BudgetedSandbox(SandboxedEnvironment):
    """A sandbox whose every operation is metered (see the module doc)."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for name in _REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.globals["range"] = _range
        self.globals["__mmms_loop"] = _loop
        self.globals["__mmms_concat"] = _concat
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        self.filters = {name: _metered_filter(name, f) for name, f in self.filters.items()}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        transformed: nodes.Template = _Metered().visit(tree)
        return transformed

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in _UNSAFE_STR_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def wrap_str_format(self, value: Any) -> Any:
        """Jinja hands ``str.format``/``format_map`` out wrapped in its own formatter before
        asking :meth:`is_safe_attribute`, and ``'{:>999999999}'.format(x)`` pads without
        bound: they are refused like the other padding methods."""
        if super().wrap_str_format(value) is None:
            return None
        return self.unsafe_undefined(value.__self__, value.__name__)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        meter = current_meter()
        meter.tick()
        if operator == "*":
            count = right if isinstance(left, _SEQUENCES) else left
            sequence = left if isinstance(left, _SEQUENCES) else right
            if isinstance(sequence, _SEQUENCES) and isinstance(count, int):
                meter.allow_size(len(sequence) * max(count, 0), "a repeated string or list")
            elif isinstance(left, int) and isinstance(right, int):
                _allow_bits(meter, left.bit_length() + right.bit_length())
        elif operator == "+":
            meter.allow_size(_size(left) + _size(right), "a sum of strings or lists")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            _allow_bits(meter, left.bit_length() * max(right, 0))
        elif operator == "%" and isinstance(left, str):
            meter.allow_size(_percent_size(left, right), "a %-formatted string")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(__obj, Undefined):  # say what is missing or unsafe, not what it was given
            return super().call(__context, __obj, *args, **kwargs)
        meter = current_meter()
        meter.tick(MACRO_CALL_COST if isinstance(__obj, Macro) else 1)
        for value in (*args, *kwargs.values()):
            meter.allow_number(value)
        _precheck_str_method(meter, __obj, args)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, _SEQUENCES):
            meter.allow_size(len(result), "a call's result")
        return result


def _percent_size(template: str, arguments: Any) -> int:
    """An upper bound of ``template % arguments``'s length: every width and precision
    (``*`` ones included, which take the largest number given) counted as if used."""
    numbers = arguments if isinstance(arguments, tuple) else (arguments,)
    star = max((abs(n) for n in numbers if isinstance(n, int)), default=0)
    padding = sum(
        star if part == "*" else int(part)
        for spec in _PERCENT_SPEC.findall(template)
        for part in spec
        if part
    )
    return len(template) + padding + len(str(arguments))


def _allow_bits(meter: RenderMeter, bits: int) -> None:
    if bits > 64 * 1024:
        raise RenderLimitError(
            "a number in the template would be too large to compute", "MAX_RENDER_OPERATIONS"
        )
    meter.tick()


def _precheck_str_method(meter: RenderMeter, method: Any, args: tuple[Any, ...]) -> None:
    """Size ``str.replace`` and ``str.join`` results before they are built."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(owner, str) and name == "replace" and len(args) >= 2:
        _allow_replace(meter, owner, str(args[0]), str(args[1]))
    elif isinstance(owner, str) and name == "join" and args:
        _allow_join(meter, args[0], owner)


def _allow_replace(meter: RenderMeter, text: str, old: str, new: str) -> None:
    count = text.count(old) if old else len(text) + 1
    meter.allow_size(len(text) + count * (len(new) - len(old)), "a replace() result")


def _allow_join(meter: RenderMeter, items: Any, separator: str) -> None:
    if isinstance(items, list | tuple):
        total = sum(len(str(i)) for i in items) + len(separator) * max(len(items) - 1, 0)
        meter.allow_size(total, "a join() result")


def _metered_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` counted as an operation, its size-amplifying cases checked before it
    runs and its result after."""

    @wraps(function)
    def metered(*args: Any, **kwargs: Any) -> Any:
        meter = current_meter()
        meter.tick()
        for value in (*args, *kwargs.values()):
            meter.allow_number(value)
        values = [a for a in args if isinstance(a, str | list | tuple)]
        if name == "replace" and len(values) >= 3:
            _allow_replace(meter, str(values[0]), str(values[1]), str(values[2]))
        if name == "join" and values:
            separator = next((a for a in args[2:] if isinstance(a, str)), "")
            _allow_join(meter, values[0], str(kwargs.get("d", separator)))
        result = function(*args, **kwargs)
        if isinstance(result, _SEQUENCES):
            meter.allow_size(len(result), f"the {name} filter's result")
        return result

    return metered
