"""Message templates: render a guest's SMS and email, or the front desk's email, from templates/.

Hotel staff edit the templates, so they run in Jinja's immutable sandbox with strict undefined
variables, HTML escaping in `.html` files only, and limits on loops and output size. Every
failure is a `TemplateError` naming `file:line` in words staff can act on, and never carries a
context value (a PIN, an Instant Key URL). Edits take effect on the next render: Jinja compares
the file's mtime on each load.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Generator, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, cast

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.exceptions import SecurityError, TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.errors import TemplateError

VARIABLES: dict[str, str] = {
    "guest_name": "The guest's full name, e.g. Alex Rivera",
    "guest_first_name": "The guest's first name, e.g. Alex (may be empty)",
    "space_names": (
        "The rooms and spaces the access covers, a list, e.g. ['Room 204'] (may be empty)"
    ),
    "stay_starts_at": "When access starts, ready to print, e.g. Fri 20 Jun 2025, 15:00 UTC",
    "stay_ends_at": "When access ends, ready to print, e.g. Mon 23 Jun 2025, 11:00 UTC",
    "reservation": "The reservation key or access grant key, e.g. reservation-8841 (may be None)",
    "access_grant_id": "Seam's id of the access grant",
    "access_method_id": "Seam's id of the access method (the code, mobile key or card)",
    "pin_code": "The door PIN code, e.g. 1234 (set for pin_code only, else None)",
    "instant_key_url": "The Instant Key (mobile key) link (set for instant_key only, else None)",
    "code_changed": "True when this message replaces a code the guest was sent before",
    "problem": "What went wrong, one line per channel (front_desk_undelivered only, else None)",
}

GUEST_PARTS = ("sms.txt", "email_subject.txt", "email.txt", "email.html")
EMAIL_PARTS = ("email_subject.txt", "email.txt", "email.html")
# Message name (its folder under templates/) -> the files it is made of.
MESSAGES: dict[str, tuple[str, ...]] = {
    "pin_code": GUEST_PARTS,
    "instant_key": GUEST_PARTS,
    "front_desk_card": EMAIL_PARTS,
    "front_desk_undelivered": EMAIL_PARTS,
}

SAMPLE_PIN = "1234"
SAMPLE_INSTANT_KEY_URL = "https://ik.seam.co/ABCXYZ"
_SAMPLE_STAY: dict[str, object] = {
    "guest_name": "Alex Rivera",
    "guest_first_name": "Alex",
    "space_names": ["Room 204"],
    "stay_starts_at": "Fri 20 Jun 2025, 15:00 UTC",
    "stay_ends_at": "Mon 23 Jun 2025, 11:00 UTC",
    "reservation": "reservation-8841",
    "access_grant_id": "b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b",
    "pin_code": None,
    "instant_key_url": None,
    "code_changed": False,
    "problem": None,
}
SAMPLE_CONTEXTS: dict[str, dict[str, object]] = {
    "pin_code": _SAMPLE_STAY
    | {"access_method_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479", "pin_code": SAMPLE_PIN},
    "instant_key": _SAMPLE_STAY
    | {
        "access_method_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "instant_key_url": SAMPLE_INSTANT_KEY_URL,
    },
    "front_desk_card": _SAMPLE_STAY | {"access_method_id": "27d8ad77-55c2-4e20-b5b3-43555926f0e8"},
    "front_desk_undelivered": _SAMPLE_STAY
    | {
        "access_method_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "problem": "SMS to +1********23: not a valid phone number (code 21211)\n"
        "Email to a***@example.com: the from address is not a verified Sender (code 403)",
    },
}

MAX_OUTPUT_CHARS = 100_000  # one rendered part; a real message is a few KB at most
MAX_RANGE = 1_000  # items in one range()
MAX_LOOP_BUDGET = 10_000  # range() items in one render, all loops together
MAX_NUMBER_ARG = 10_000  # widths and counts passed to filters and string methods
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_PRINTF_SPEC = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_CREDENTIAL_KEYS = frozenset({"pin_code", "instant_key_url"})
_loop_budget: ContextVar[list[int] | None] = ContextVar("keycourier_loop_budget", default=None)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str = field(repr=False)
    text: str = field(repr=False)
    html: str = field(repr=False)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the templates, for `keycourier templates check`."""

    where: str
    reason: str


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
    budget = _loop_budget.get()
    if budget is not None:
        budget[0] -= len(numbers)
        if budget[0] < 0:
            raise SecurityError(f"the loops in one message may run at most {MAX_LOOP_BUDGET} times")
    return numbers


def _guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    value_index = 1 if hasattr(function, "jinja_pass_arg") else 0

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if name == "format" and len(args) > value_index and isinstance(args[value_index], str):
            _check_printf(args[value_index])
        if any(map(_too_big, [*args[value_index + 1 :], *kwargs.values()])):
            raise SecurityError(f"a number given to the {name} filter is too large")
        return function(*args, **kwargs)

    return guarded


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus limits on sizes a template can ask for."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, templates_dir: Path) -> None:
        super().__init__(
            loader=FileSystemLoader(templates_dir),
            autoescape=select_autoescape(
                enabled_extensions=("html",), default_for_string=False, default=False
            ),
            undefined=StrictUndefined,
            auto_reload=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.globals["range"] = _capped_range
        self.globals.pop("lipsum", None)
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
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
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_spec(value.__self__)
        return wrapped

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        values = [*args, *kwargs.values()]
        if isinstance(getattr(obj, "__self__", None), str) and any(map(_too_big, values)):
            raise SecurityError("a number given to a text method is too large")
        if any(isinstance(v, str) and len(v) > MAX_OUTPUT_CHARS for v in values):
            raise SecurityError("a text passed to a call is too long")
        return super().call(context, obj, *args, **kwargs)


class Renderer:
    """Renders messages from a templates directory; safe to share between threads."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = Path(templates_dir)
        self._root = self.templates_dir.resolve()  # the loader too: immune to a later chdir
        self.environment = _Sandbox(self._root)

    def render_sms(self, message: str, context: Mapping[str, object]) -> str:
        return self.render_part(message, "sms.txt", context).strip()

    def render_email(self, message: str, context: Mapping[str, object]) -> RenderedEmail:
        subject = self.render_part(message, "email_subject.txt", context)
        return RenderedEmail(
            subject=" ".join(subject.split()),
            text=self.render_part(message, "email.txt", context).strip() + "\n",
            html=self.render_part(message, "email.html", context).strip() + "\n",
        )

    def render_part(self, message: str, part: str, context: Mapping[str, object]) -> str:
        """Render one file of a message as written (no stripping)."""
        if not _NAME.fullmatch(message) or part not in GUEST_PARTS:
            raise TemplateError(f"there is no message {message!r} with a part {part!r}")
        name = f"{message}/{part}"
        try:
            template = self.environment.get_template(name)
        except TemplateNotFound:
            raise TemplateError(f"{name} is missing", where=name) from None
        except TemplateSyntaxError as exc:
            raise self._syntax_error(exc) from None
        except Exception as exc:
            raise TemplateError(
                f"{name} cannot be read ({type(exc).__name__})", where=name
            ) from None
        token = _loop_budget.set([MAX_LOOP_BUDGET])
        chunks = cast(Generator[str, None, None], template.generate(dict(context)))
        try:
            return _join_capped(chunks, name)
        except Exception as exc:
            error = self._render_error(exc, name, context)
        finally:
            chunks.close()
            _loop_budget.reset(token)
        # Raised out here, not in `except`, so the original error (its text may quote a context
        # value, such as a PIN) is not chained to it.
        raise error

    def _render_error(
        self, exc: Exception, name: str, context: Mapping[str, object]
    ) -> TemplateError:
        if isinstance(exc, TemplateError):
            return exc
        if isinstance(exc, TemplateSyntaxError):  # in a file it includes or extends
            return self._syntax_error(exc)
        where = self._where(exc) or name
        if isinstance(exc, TemplateNotFound):
            return TemplateError(f"{exc.name} is missing", where=where)
        if isinstance(exc, SecurityError):
            reason = f"not allowed in a template: {exc.message}"
        elif isinstance(exc, UndefinedError):
            reason = f"{exc.message}: check the spelling (the variables are in templates/README.md)"
        else:
            reason = f"cannot render: {type(exc).__name__}: {exc}"
        return TemplateError(_hide_values(reason, context), where=where)

    def _relative(self, filename: str | None) -> str | None:
        if not filename:
            return None
        path = Path(filename).resolve()
        return path.relative_to(self._root).as_posix() if path.is_relative_to(self._root) else None

    def _where(self, exc: BaseException) -> str | None:
        """`file:line` of the deepest template frame in the traceback (Jinja rewrites them)."""
        where = None
        tb = exc.__traceback__
        while tb is not None:
            relative = self._relative(tb.tb_frame.f_code.co_filename)
            if relative is not None:
                where = f"{relative}:{tb.tb_lineno}"
            tb = tb.tb_next
        return where

    def _syntax_error(self, exc: TemplateSyntaxError) -> TemplateError:
        name = exc.name or self._relative(exc.filename) or "?"
        return TemplateError(f"syntax error: {exc.message}", where=f"{name}:{exc.lineno}")


def _join_capped(chunks: Iterable[str], name: str) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateError(
                f"the message is longer than {MAX_OUTPUT_CHARS:,} characters", where=name
            )
        parts.append(chunk)
    return "".join(parts)


def _hide_values(text: str, context: Mapping[str, object]) -> str:
    """Blank out every context value that appears in `text`, longest first."""
    values: set[str] = set()
    for key, value in context.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, str) and (len(item) >= 3 or (key in _CREDENTIAL_KEYS and item)):
                values.add(item)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "[hidden]")
    return text
