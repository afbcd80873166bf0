"""The sandbox the ops team's templates run in, and the limits that keep one render small.

Jinja's immutable sandbox already refuses `__class__`-style attribute access and mutation of
the data. On top of it, every render gets a budget: a deadline (MAX_RENDER_SECONDS) and a
number of steps (loop items, calls, filters, includes, `+`/`~`/`*` results). Each step checks
both, so an endless loop, a recursive macro or a string doubled in a loop stops with a
SecurityError instead of taking a worker down. Every intermediate text or list is capped at
MAX_OUTPUT_CHARS, so nothing grows past that size before it is refused.
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

from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, nodes, select_autoescape
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT_CHARS = 100_000  # one rendered part, or any text built on the way
MAX_RENDER_SECONDS = 1.0  # one part; a real message renders in about a millisecond
MAX_STEPS = 20_000  # loop items, calls and filters in one render
MAX_RANGE = 1_000  # items in one range()
MAX_NUMBER_ARG = 10_000  # widths and counts passed to filters and string methods
# Internal filters the parser wraps around every loop and every `~`; templates never write them.
LOOP_GUARD = "_kc_loop_guard"
SIZE_GUARD = "_kc_size_guard"
_PRINTF_SPEC = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


@dataclass
class _Budget:
    deadline: float
    steps: int


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


def _size_guard(value: Any) -> Any:
    spend()
    return _check_size(value)


def _guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    value_index = 1 if hasattr(function, "jinja_pass_arg") else 0

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        spend()
        if name == "format" and len(args) > value_index and isinstance(args[value_index], str):
            _check_printf(args[value_index])
        if any(map(_too_big, [*args[value_index + 1 :], *kwargs.values()])):
            raise SecurityError(f"a number given to the {name} filter is too large")
        return _check_size(function(*args, **kwargs))

    return guarded


def _guard_tree(node: nodes.Node) -> None:
    """Wrap every loop's items and every `~` in a guard filter, so each costs budget."""
    for name in node.fields:
        value = getattr(node, name, None)
        if isinstance(value, nodes.Node):
            _guard_tree(value)
            if isinstance(value, nodes.Concat) or (isinstance(node, nodes.For) and name == "iter"):
                setattr(node, name, _wrap(value, LOOP_GUARD if name == "iter" else SIZE_GUARD))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, nodes.Node):
                    _guard_tree(item)
                    if isinstance(item, nodes.Concat):
                        value[index] = _wrap(item, SIZE_GUARD)


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
        self.filters[SIZE_GUARD] = _size_guard

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _guard_tree(tree)
        return tree

    def get_template(self, *args: Any, **kwargs: Any) -> Any:
        spend()  # an include or extends inside a render: a template including itself stops
        return super().get_template(*args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        spend()
        if operator == "*":
            for items, times in ((left, right), (right, left)):
                if (
                    isinstance(items, str | list | tuple)
                    and isinstance(times, int)
                    and len(items) * times > MAX_OUTPUT_CHARS
                ):
                    raise SecurityError("repeating text or a list that many times is too much")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if abs(left) > 1 and left.bit_length() * right > 4096:
                raise SecurityError("the number is too large")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
        return _check_size(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_spec(value.__self__)
        return wrapped

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        spend()
        values = [*args, *kwargs.values()]
        if isinstance(getattr(obj, "__self__", None), str) and any(map(_too_big, values)):
            raise SecurityError("a number given to a text method is too large")
        if any(isinstance(v, str) and len(v) > MAX_OUTPUT_CHARS for v in values):
            raise SecurityError("a text passed to a call is too long")
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
