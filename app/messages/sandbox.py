"""The sandbox the ops team's templates run in, and the limits that keep one render small.

Jinja's immutable sandbox already refuses `__class__`-style attribute access and mutation of
the data. On top of it, every render gets a budget: a deadline (MAX_RENDER_SECONDS) and a
number of steps (loop items, calls, filters, includes, `+`/`~`/`*` results). Each step checks
both, so an endless loop, a recursive macro or a string doubled in a loop stops with a
SecurityError instead of taking a worker down.

Memory is bounded before it is asked for, not after: every text method, filter, `*`, `+`, `%`,
`**` and `~` first works out from its operands how big its result would be (bounds.py) and is
refused when that passes MAX_OUTPUT_CHARS, so no single step can allocate more than that. And
every piece of text a render writes (into the message, a macro's result, a `{% set %}` block)
counts against MAX_RENDER_CHARS, so no loop can pile up more than that in a buffer.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any

from jinja2 import (
    BaseLoader,
    StrictUndefined,
    TemplateNotFound,
    nodes,
    pass_context,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.messages.bounds import (
    MAX_INT_BITS,
    binop_bound,
    escaped_bound,
    filter_bound,
    method_bound,
    take,
    text_bound,
)

MAX_OUTPUT_CHARS = 100_000  # one rendered part, or any text or list built on the way
MAX_RENDER_CHARS = 1_000_000  # all the text one render writes, into every buffer
MAX_RENDER_SECONDS = 1.0  # one part; a real message renders in about a millisecond
MAX_STEPS = 20_000  # loop items, calls and filters in one render
MAX_RANGE = 1_000  # items in one range()
MAX_NUMBER_ARG = 10_000  # widths and counts passed to filters and string methods
# Internal filters the parser puts around every loop's items, every `~` and every piece of text
# a template writes; templates never write them.
LOOP_GUARD = "_kc_loop_guard"
CONCAT = "_kc_concat"
WRITE = "_kc_write"
WRITE_TEXT = "_kc_write_text"
_PRINTF_SPEC = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


@dataclass
class _Budget:
    deadline: float
    steps: int
    chars: int = MAX_RENDER_CHARS


_budget: ContextVar[_Budget | None] = ContextVar("keycourier_render_budget", default=None)


@contextmanager
def render_budget() -> Iterator[None]:
    """Limit the work done inside the block to one render's budget."""
    token = _budget.set(_Budget(time.monotonic() + MAX_RENDER_SECONDS, MAX_STEPS))
    try:
        yield
    finally:
        _budget.reset(token)


def spend(steps: int = 1) -> None:
    budget = _budget.get()
    if budget is None:  # compiling or checking outside a render: nothing runs for real
        return
    budget.steps -= steps
    if budget.steps < 0:
        raise SecurityError(f"the template does too much work (over {MAX_STEPS:,} steps)")
    if time.monotonic() > budget.deadline:
        raise SecurityError(f"the template took longer than {MAX_RENDER_SECONDS:g} s to render")


def _refuse_over(size: int, what: str) -> None:
    """Refuse, before it runs, an operation whose result would be bigger than MAX_OUTPUT_CHARS."""
    if size > MAX_OUTPUT_CHARS:
        raise SecurityError(
            f"{what} would make a text or list of over {MAX_OUTPUT_CHARS:,} characters"
        )


def _write(size: int) -> None:
    """Count text a render writes against MAX_RENDER_CHARS (a loop of writes, into a buffer)."""
    _refuse_over(size, "writing this")
    budget = _budget.get()
    if budget is None:
        return
    budget.chars -= size
    if budget.chars < 0:
        raise SecurityError(f"the template writes over {MAX_RENDER_CHARS:,} characters in all")


def _materialize(values: Iterable[Any]) -> list[Any]:
    """Generators among a call's arguments, drawn into lists within the size limit first."""
    drawn = []
    for value in values:
        if isinstance(value, Iterator):
            try:
                value = take(value, MAX_OUTPUT_CHARS)
            except ValueError:
                _refuse_over(MAX_OUTPUT_CHARS + 1, "drawing these items")
        drawn.append(value)
    return drawn


def _check_size(value: object) -> object:
    if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT_CHARS:
        raise SecurityError(f"a text or list longer than {MAX_OUTPUT_CHARS:,} is not allowed")
    return value


def _too_big(number: object) -> bool:
    return isinstance(number, int) and abs(number) > MAX_NUMBER_ARG


def _check_printf(fmt: str) -> None:
    for match in _PRINTF_SPEC.finditer(fmt.replace("%%", "")):
        for width in match.groups():
            if width == "*" or (width is not None and int(width) > MAX_NUMBER_ARG):
                raise SecurityError("a % format with a * or very large width is not allowed")


def _check_format_spec(fmt: str) -> None:
    for _, _, spec, _ in string.Formatter().parse(fmt):
        if spec and ("{" in spec or any(int(n) > MAX_NUMBER_ARG for n in re.findall(r"\d+", spec))):
            raise SecurityError("a format() with a nested or very large width is not allowed")


def _capped_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() may count at most {MAX_RANGE} items")
    return numbers


def _loop_guard(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        spend()
        yield item


# pass_context: never folded into a constant at compile time, so each runs, and counts, at render.
@pass_context
def _concat(context: Context, pieces: tuple[Any, ...]) -> str:
    """`a ~ b ~ c`, refused before joining when the joined text would be too long."""
    spend()
    escaping = context.eval_ctx.autoescape
    limit = MAX_OUTPUT_CHARS
    size = sum(escaped_bound(p, limit) if escaping else text_bound(p, limit) for p in pieces)
    _refuse_over(size, "joining with ~")
    return str(markup_join(pieces) if escaping else str_join(pieces))


@pass_context
def _write_value(context: Context, value: Any) -> Any:
    """A `{{ ... }}` about to be written: its text counted before it is made."""
    spend()
    limit = MAX_OUTPUT_CHARS
    escaping = context.eval_ctx.autoescape
    _write(escaped_bound(value, limit) if escaping else text_bound(value, limit))
    return value


@pass_context
def _write_text(_context: Context, value: str, size: int) -> str:
    """The template's own text about to be written (`size` characters of it)."""
    spend()
    _write(size)
    return value


def _guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    value_index = 1 if hasattr(function, "jinja_pass_arg") else 0
    bound = filter_bound(name, function)

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        spend()
        if name == "format" and len(args) > value_index and isinstance(args[value_index], str):
            _check_printf(args[value_index])
        if any(map(_too_big, [*args[value_index + 1 :], *kwargs.values()])):
            raise SecurityError(f"a number given to the {name} filter is too large")
        args = tuple(_materialize(args))
        _refuse_over(bound(MAX_OUTPUT_CHARS, *args, **kwargs), f"the {name} filter")
        return _check_size(function(*args, **kwargs))

    return guarded


def _guard_tree(node: nodes.Node) -> None:
    """Put the guards in: every loop's items, every `~` and everything written cost budget, and
    a `~` is measured before it joins."""
    for name in node.fields:
        value = getattr(node, name, None)
        if isinstance(value, nodes.Node):
            _guard_tree(value)
            if isinstance(value, nodes.Concat):
                setattr(node, name, _concat_node(value))
            elif isinstance(node, nodes.For) and name == "iter":
                setattr(node, name, _wrap(value, LOOP_GUARD))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, nodes.Node):
                    _guard_tree(item)
                    if isinstance(item, nodes.Concat):
                        value[index] = _concat_node(item)
    if isinstance(node, nodes.Output):
        node.nodes = _counted_writes(node.nodes)


def _counted_writes(children: list[nodes.Expr]) -> list[nodes.Expr]:
    """An output's pieces, each `{{ }}` counted before it is written, and its literal text
    counted once in front of it."""
    literal = sum(len(child.data) for child in children if isinstance(child, nodes.TemplateData))
    guarded: list[nodes.Expr] = [
        child if isinstance(child, nodes.TemplateData) else _wrap(child, WRITE)
        for child in children
    ]
    if literal:
        lineno = children[0].lineno
        count = nodes.Filter(
            nodes.Const("", lineno=lineno), WRITE_TEXT, [nodes.Const(literal)], [], None, None,
            lineno=lineno,
        )  # fmt: skip
        guarded.insert(0, count)
    return guarded


def _concat_node(concat: nodes.Concat) -> nodes.Filter:
    pieces = nodes.Tuple(list(concat.nodes), "load", lineno=concat.lineno)
    return nodes.Filter(pieces, CONCAT, [], [], None, None, lineno=concat.lineno)


def _wrap(expr: nodes.Node, guard: str) -> nodes.Filter:
    assert isinstance(expr, nodes.Expr)
    return nodes.Filter(expr, guard, [], [], None, None, lineno=expr.lineno)


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with strict undefined, HTML-only escaping and a budget."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, loader: BaseLoader) -> None:
        super().__init__(
            loader=loader,
            autoescape=select_autoescape(
                enabled_extensions=("html",), default_for_string=False, default=False
            ),
            undefined=StrictUndefined,
            auto_reload=False,  # the loader serves one immutable snapshot of the folder
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.globals["range"] = _capped_range
        self.globals.pop("lipsum", None)
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.filters[LOOP_GUARD] = _loop_guard
        self.filters[CONCAT] = _concat
        self.filters[WRITE] = _write_value
        self.filters[WRITE_TEXT] = _write_text

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _guard_tree(tree)
        return tree

    def get_template(self, *args: Any, **kwargs: Any) -> Any:
        spend()  # an include or extends inside a render: a template including itself stops
        return super().get_template(*args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        spend()
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS:
                raise SecurityError("the number is too large")
        elif operator == "*" and isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError("the number is too large")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
        _refuse_over(binop_bound(operator, left, right, MAX_OUTPUT_CHARS), f"this {operator}")
        return _check_size(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_spec(value.__self__)
        return wrapped

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        spend()
        values = [*args, *kwargs.values()]
        # str.format comes wrapped by Jinja's getattr (its format checks): look through it.
        text = getattr(getattr(obj, "__wrapped__", obj), "__self__", None)
        if isinstance(text, str) and any(map(_too_big, values)):
            raise SecurityError("a number given to a text method is too large")
        args = tuple(_materialize(args))
        if isinstance(text, str):
            name = getattr(obj, "__name__", "")
            size = method_bound(text, name, list(args), kwargs, MAX_OUTPUT_CHARS)
            _refuse_over(size, f"this .{name}()")
        return _check_size(super().call(context, obj, *args, **kwargs))


class SnapshotLoader(BaseLoader):
    """Serves templates from one in-memory read of the folder: an edit is a new snapshot."""

    def __init__(self, sources: Mapping[str, str], root: str) -> None:
        self._sources = sources
        self._root = root

    def get_source(
        self, environment: Any, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        if template not in self._sources:
            raise TemplateNotFound(template)
        return self._sources[template], f"{self._root}/{template}", lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self._sources)
