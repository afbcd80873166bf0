"""How big a template operation's result can get, worked out from its operands before it runs.

The sandbox (sandbox.py) asks here before every text method, filter, `*`, `+`, `%` and `~` of a
template, and refuses the operation when the answer passes its limit: a size checked after a
call returns is too late, the memory is already taken (`x.replace('a', x)` on a 30,000-letter
`x` asks for 900 million characters in one call).

Every bound is an upper bound on the result's size in characters, never below the real one,
cheap to compute (at most a walk over the operands, cut short past the limit) and exact enough
that ordinary messages are far from it. A list counts its items and their own sizes, so
`[x] * 1000` weighs what joining or printing it would make, not 1,000.
"""

from __future__ import annotations

import inspect
import re
import string
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, Set, ValuesView
from itertools import islice
from typing import Any

from jinja2.utils import Namespace
from markupsafe import Markup

# A value's text can be longer than the value: repr() writes an unprintable character as
# \U0001xxxx, escaping writes & as &amp;, urlencode writes a 4-byte character as %XX%XX%XX%XX.
REPR_FACTOR = 10
ESCAPE_FACTOR = 6
URLENCODE_FACTOR = 12
# What a non-text, non-container value prints as: `<jinja2.runtime.Macro object at 0x...>`.
OBJECT_TEXT = 100
MAX_INT_BITS = 4096
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")


def _children(value: object) -> list[Any] | None:
    """The items a container holds (a mapping's keys and values), or None for a leaf."""
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    if isinstance(value, Mapping):
        return [*value.keys(), *value.values()]
    if isinstance(value, list | tuple | Set | KeysView | ValuesView | ItemsView):
        return list(value)
    return None


def shape(value: object, limit: int) -> tuple[int, int, int]:
    """(weight, nodes, depth) of `value`: its size in characters, how many values it holds and
    how deeply they nest. Counting stops once the weight passes `limit` (a value that holds
    itself, through a namespace, is too big rather than endless)."""
    weight = nodes = depth = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack and weight <= limit:
        item, level = stack.pop()
        nodes += 1
        depth = max(depth, level)
        if isinstance(item, str):
            weight += len(item)
        elif isinstance(item, bool) or item is None:
            weight += 5
        elif isinstance(item, int):
            weight += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            weight += 25
        elif isinstance(item, range):
            weight += 12 * (len(item) if len(item) < limit else limit)
        else:
            children = _children(item)
            if children is None:
                weight += OBJECT_TEXT
                continue
            weight += 2 + 2 * len(children)
            stack.extend((child, level + 1) for child in children)
    return weight, nodes, depth


def weight(value: object, limit: int) -> int:
    """The characters `value` stands for: a text's length; a container's items, counted whole."""
    return shape(value, limit)[0]


def text_bound(value: object, limit: int) -> int:
    """At most how long str() (or repr(), inside a container) of `value` can be."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return weight(value, limit)
    return REPR_FACTOR * weight(value, limit) + OBJECT_TEXT


def escaped_bound(value: object, limit: int) -> int:
    """At most how long `value` is once HTML-escaped (unchanged when it is Markup already)."""
    return text_bound(value, limit) * (1 if isinstance(value, Markup) else ESCAPE_FACTOR)


def take(items: Iterator[Any], limit: int) -> list[Any]:
    """An iterator's items as a list, refused (ValueError) once they weigh more than `limit`:
    a generator made by a filter is measured as it is drawn, before anything joins it."""
    found: list[Any] = []
    total = 0
    for item in islice(items, limit + 1):
        total += 1 + weight(item, limit)
        if total > limit:
            raise ValueError("too big")
        found.append(item)
    return found


# -- `%` and format() ------------------------------------------------------------------------


def _widest(numbers: list[str | None]) -> int:
    return max((int(n) for n in numbers if n and n.isdigit()), default=0)


def printf_bound(fmt: str, args: object, limit: int) -> int:
    """`fmt % args`: the text, plus for each % field its widest width or argument."""
    specs = _PRINTF_SPEC.findall(fmt)
    if isinstance(args, Mapping):
        values: list[Any] = list(args.values())
    elif isinstance(args, tuple):
        values = list(args)
    else:
        values = [args]
    widest = _widest([n for spec in specs for n in spec])
    longest = max((text_bound(v, limit) for v in values), default=0)
    factor = ESCAPE_FACTOR if isinstance(fmt, Markup) else 1
    return len(fmt) + len(specs) * (widest + factor * longest)


def format_bound(fmt: str, args: list[Any], limit: int) -> int:
    """`fmt.format(*args)`: the text, plus for each {} field its widest width or argument."""
    fields = [
        (name, spec) for _, name, spec, _ in string.Formatter().parse(fmt) if name is not None
    ]
    widest = max((int(n) for _, spec in fields for n in re.findall(r"\d+", spec or "")), default=0)
    longest = max((text_bound(v, limit) for v in args), default=0)
    factor = ESCAPE_FACTOR if isinstance(fmt, Markup) else 1
    return len(fmt) + len(fields) * (widest + factor * longest)


# -- binary operators ------------------------------------------------------------------------


def binop_bound(operator: str, left: Any, right: Any, limit: int) -> int:
    """The size of `left <operator> right` for the operators that can grow a text or a list
    (numbers: see MAX_INT_BITS in the sandbox)."""
    if operator == "*":
        for items, times in ((left, right), (right, left)):
            if isinstance(times, int) and (isinstance(items, str) or _children(items) is not None):
                return weight(items, limit) * max(times, 0)
    elif operator == "+" and not isinstance(left, int | float):
        return weight(left, limit) + weight(right, limit)
    elif operator == "%" and isinstance(left, str):
        return printf_bound(left, right, limit)
    return 0


# -- text methods ----------------------------------------------------------------------------


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) else default


def _replace(text: str, old: object, new: object, count: object = -1) -> int:
    old_text, new_text = str(old), str(new)
    found = text.count(old_text) if old_text else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(0, len(new_text) - len(old_text))


def method_bound(text: str, name: str, args: list[Any], kwargs: dict[str, Any], limit: int) -> int:
    """The size of `text.<name>(*args, **kwargs)`, for every method of str and Markup."""
    size = len(text)
    escape = ESCAPE_FACTOR if isinstance(text, Markup) else 1
    given = [*args, *kwargs.values()]
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(size, _int(args[0] if args else kwargs.get("width")))
    if name == "expandtabs":
        tabsize = _int(args[0] if args else kwargs.get("tabsize", 8), 8)
        return size + text.count("\t") * max(tabsize, 0)
    if name == "replace" and len(args) >= 2:
        return escape * _replace(text, *args[:3])
    if name == "join" and args:
        items = args[0]
        count = len(items) if hasattr(items, "__len__") else 0
        return escape * weight(items, limit) + size * max(count - 1, 0)
    if name in ("format", "format_map"):
        values = list(args[0].values()) if name == "format_map" and args else given
        return format_bound(text, values, limit)
    if name == "translate" and args:
        children = _children(args[0]) or []
        if isinstance(args[0], str):
            children = list(args[0])
        return size * max([1, *(text_bound(item, limit) for item in children)])
    if name in ("upper", "lower", "casefold", "swapcase", "title", "capitalize"):
        return 3 * size  # a few characters change case into three ('ﬃ'.upper() == 'FFI')
    if name == "encode":
        return 10 * size  # 'xmlcharrefreplace' writes a character as &#1114111;
    if name in ("split", "rsplit", "splitlines", "partition", "rpartition"):
        return 3 * size + 6
    if name in ("strip", "lstrip", "rstrip", "removeprefix", "removesuffix", "striptags"):
        return size
    if name.startswith("is") or name in ("count", "find", "rfind", "index", "rindex"):
        return 1
    if name in ("startswith", "endswith", "unescape"):
        return size
    return REPR_FACTOR * (size + sum(weight(value, limit) for value in given))


# -- filters ---------------------------------------------------------------------------------

Bound = Callable[[dict[str, Any], int], int]


def _text(value: object, limit: int) -> int:
    return text_bound(value, limit)


def _lines(value: object) -> int:
    return str(value).count("\n") + 1 if isinstance(value, str) else 1


def _indent(a: dict[str, Any], limit: int) -> int:
    width = a.get("width", 4)
    per_line = width if isinstance(width, int) else len(str(width))
    return _text(a["s"], limit) + _lines(a["s"]) * max(per_line, 0)


def _wordwrap(a: dict[str, Any], limit: int) -> int:
    size = _text(a["s"], limit)
    wrap = a.get("wrapstring")
    return size + (size + 1) * (len(wrap) if isinstance(wrap, str) else 2)


def _join(a: dict[str, Any], limit: int) -> int:
    items = a["value"]
    count = len(items) if hasattr(items, "__len__") else 0
    return ESCAPE_FACTOR * (weight(items, limit) + len(str(a.get("d", ""))) * count)


def _replace_filter(a: dict[str, Any], limit: int) -> int:
    if not isinstance(a["s"], str):
        return ESCAPE_FACTOR * _text(a["s"], limit) + 10 * len(str(a["new"]))
    return ESCAPE_FACTOR * _replace(a["s"], a["old"], a["new"], a.get("count") or -1)


def _urlize(a: dict[str, Any], limit: int) -> int:
    size = _text(a["value"], limit)
    words = len(str(a["value"]).split()) + 1 if isinstance(a["value"], str) else size
    extra = 80 + len(str(a.get("target") or "")) + len(str(a.get("rel") or ""))
    return ESCAPE_FACTOR * size + 2 * size + words * extra


def _nested(a: dict[str, Any], limit: int, per_level: int) -> int:
    size, nodes, depth = shape(a["value"], limit)
    return ESCAPE_FACTOR * REPR_FACTOR * size + nodes * (depth + 1) * (per_level + 2)


def _tojson(a: dict[str, Any], limit: int) -> int:
    return _nested(a, limit, _int(a.get("indent")))


def _batch(a: dict[str, Any], limit: int) -> int:
    fill = 1 + weight(a.get("fill_with"), limit)
    per = a.get("linecount") if "linecount" in a else a.get("slices")
    return 2 * weight(a["value"], limit) + max(_int(per), 0) * fill + 2


FILTER_BOUNDS: dict[str, Bound] = {
    "center": lambda a, limit: max(_text(a["value"], limit), _int(a.get("width", 80))),
    "indent": _indent,
    "wordwrap": _wordwrap,
    "truncate": lambda a, limit: _text(a["s"], limit) + len(str(a.get("end", "..."))),
    "replace": _replace_filter,
    "join": _join,
    "format": lambda a, limit: printf_bound(
        str(a["value"]), a.get("kwargs") or tuple(a.get("args", ())), limit
    ),
    "forceescape": lambda a, limit: ESCAPE_FACTOR * _text(a["value"], limit),
    "urlencode": lambda a, limit: URLENCODE_FACTOR * _text(a["value"], limit),
    "urlize": _urlize,
    "tojson": _tojson,
    "pprint": lambda a, limit: _nested(a, limit, 1),
    "xmlattr": lambda a, limit: ESCAPE_FACTOR * _text(a["d"], limit),
    "string": lambda a, limit: _text(a["value"], limit),
    "list": lambda a, limit: 2 * weight(a["value"], limit) + 2,
    "batch": _batch,
    "slice": _batch,
    "sum": lambda a, limit: weight(a["iterable"], limit) + weight(a.get("start"), limit),
}


def filter_bound(name: str, function: Callable[..., Any]) -> Callable[..., int]:
    """For one filter: a function of its call's arguments giving the size of its result."""
    specific = FILTER_BOUNDS.get(name)
    if name in ("escape", "e"):  # markupsafe's, in C: no signature to bind
        return lambda limit, *args, **kwargs: escaped_bound(args[0], limit) if args else 0
    signature = inspect.signature(function) if specific is not None else None

    def bound(limit: int, *args: Any, **kwargs: Any) -> int:
        if specific is not None and signature is not None:
            try:
                arguments = signature.bind(*args, **kwargs).arguments
            except TypeError:
                return 0  # the call itself fails with the same TypeError, having made nothing
            return specific(dict(arguments), limit)
        # Any other filter keeps, picks, counts, sorts or changes the case of what it is given.
        return 3 * sum(weight(value, limit) for value in [*args, *kwargs.values()]) + 100

    return bound
