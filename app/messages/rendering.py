"""Rendering a guest's SMS and email, or the front desk's email, from one snapshot of templates/.

Each message folder holds one folder per language (`pin_code/en/`, `pin_code/fr/`); a language
without its folder falls back to DEFAULT_LOCALE's. Templates run in `app.messages.sandbox`. Every
failure is a `TemplateError` naming `file:line` in words staff can act on, and never carries a
context value (a PIN, an Instant Key URL). HTML email gets the layout's `<style>` inlined, as
mail apps ignore style sheets.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import css_inline
from jinja2.exceptions import SecurityError, TemplateNotFound, TemplateSyntaxError, UndefinedError

from app.errors import PropertiesError, TemplateError
from app.messages.catalog import GUEST_PARTS, MESSAGES, PROPERTIES_FILE
from app.messages.files import TemplateFiles, read_files
from app.messages.kinds import MessageKind
from app.messages.properties import (
    Audience,
    PropertyMap,
    Routing,
    parse_properties,
)
from app.messages.sandbox import MAX_OUTPUT_CHARS, Sandbox, SnapshotLoader, render_budget
from app.messages.whatsapp import Content, content_variables
from app.settings.locales import normalize_locale

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_CREDENTIAL_KEYS = frozenset({"pin_code", "instant_key_url"})
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str = field(repr=False)
    text: str = field(repr=False)
    html: str = field(repr=False)


class Templates(Protocol):
    """The templates ops edit, as the domain renders from them: what a Context holds
    (app.messages.live.LiveTemplates implements it)."""

    def audience(
        self, message: str, workspace_id: str | None, space_ids: Sequence[str]
    ) -> Audience:
        """Language, time zone and hotel name for a message about these Seam ids."""
        ...

    def timezone(self, workspace_id: str | None, space_ids: Sequence[str]) -> str:
        """The property's time zone (properties.toml, else TIMEZONE)."""
        ...

    def country(self, workspace_id: str | None, space_ids: Sequence[str]) -> str | None:
        """The property's country (properties.toml), in which guests' national phone
        numbers are read; None when it gives none."""
        ...

    def routing(self, workspace_id: str | None, space_ids: Sequence[str]) -> Routing:
        """The property's front desk and senders from properties.toml; None where it sets
        none (FRONT_DESK_EMAIL and the providers' senders then apply)."""
        ...

    def whatsapp_content(
        self,
        message: str,
        workspace_id: str | None,
        space_ids: Sequence[str],
        context: Mapping[str, object],
    ) -> Content | None:
        """The WhatsApp content template `message` goes out as for these Seam ids, in the
        context's language, with its placeholders filled; None when properties.toml names
        none."""
        ...

    def guest_resend_link(self, workspace_id: str | None, space_ids: Sequence[str]) -> bool:
        """Whether the property's guests get a "resend my key" link (properties.toml's
        guest_resend_link; off unless set)."""
        ...

    def render_sms(self, message: str, context: Mapping[str, object]) -> str: ...

    def render_email(self, message: str, context: Mapping[str, object]) -> RenderedEmail: ...


class Renderer:
    """Renders messages from one snapshot of the templates folder; safe to share between threads."""

    def __init__(
        self, files: TemplateFiles, *, default_locale: str = "en", default_timezone: str = "UTC"
    ) -> None:
        self.files = files
        self.templates_dir = files.root
        self.default_locale = normalize_locale(default_locale)
        self.default_timezone = default_timezone
        self.environment = Sandbox(SnapshotLoader(files.sources, files.root.as_posix()))
        self.properties = PropertyMap()
        self.properties_error: PropertiesError | None = None
        if PROPERTIES_FILE in files.sources:
            try:
                self.properties = parse_properties(files.sources[PROPERTIES_FILE])
            except PropertiesError as exc:
                self.properties_error = exc
        # message -> {normalized locale: folder name as written}
        self.locale_folders: dict[str, dict[str, str]] = {}
        for name in files.sources:
            parts = name.split("/")
            if len(parts) == 3 and parts[0] in MESSAGES:
                try:
                    locale = normalize_locale(parts[1])
                except ValueError:
                    continue  # the check reports a folder that is not a language
                self.locale_folders.setdefault(parts[0], {})[locale] = parts[1]

    @classmethod
    def from_folder(
        cls, templates_dir: Path, *, default_locale: str = "en", default_timezone: str = "UTC"
    ) -> Renderer:
        return cls(
            read_files(Path(templates_dir)),
            default_locale=default_locale,
            default_timezone=default_timezone,
        )

    def locale_for(self, message: str, wanted: str | None) -> str:
        """The language folder `message` is written from for a guest who wants `wanted`."""
        available = self.locale_folders.get(message, {})
        candidates = []
        if wanted:
            try:
                locale = normalize_locale(wanted)
                candidates += [locale, locale.split("_")[0]]
            except ValueError:
                pass
        for candidate in candidates:
            if candidate in available:
                return candidate
        return self.default_locale

    def audience(
        self, message: str, workspace_id: str | None, space_ids: Sequence[str]
    ) -> Audience:
        """Language, time zone and hotel name for a message about these Seam ids."""
        entry = self.properties.lookup(workspace_id, space_ids)
        return Audience(
            locale=self.locale_for(message, entry.locale or self.default_locale),
            timezone=entry.timezone or self.default_timezone,
            property_name=entry.property_name or "",
        )

    def timezone(self, workspace_id: str | None, space_ids: Sequence[str]) -> str:
        """The property's time zone: properties.toml's, else the default (TIMEZONE)."""
        return self.properties.lookup(workspace_id, space_ids).timezone or self.default_timezone

    def country(self, workspace_id: str | None, space_ids: Sequence[str]) -> str | None:
        """The hotel's country (properties.toml), for guests' national phone numbers."""
        return self.properties.lookup(workspace_id, space_ids).country

    def routing(self, workspace_id: str | None, space_ids: Sequence[str]) -> Routing:
        """The property's front desk and senders (properties.toml; None where unset)."""
        return self.properties.routing(workspace_id, space_ids)

    def whatsapp_content(
        self,
        message: str,
        workspace_id: str | None,
        space_ids: Sequence[str],
        context: Mapping[str, object],
    ) -> Content | None:
        """The content template (properties.toml) and ContentVariables for `message`; a
        variant without its own (code_changed) goes out as its message's (pin_code)."""
        kind = MessageKind.by_template(message)
        names = [message] + ([kind.value] if kind is not None and kind.value != message else [])
        for name in names:
            template = self.properties.whatsapp_template(name, workspace_id, space_ids)
            if template is None:
                continue
            locale = context.get("locale")
            wanted = locale if isinstance(locale, str) else self.default_locale
            sid = template.sid_for(wanted, self.default_locale)
            if sid is None:
                return None
            return Content(sid, content_variables(template, context))
        return None

    def guest_resend_link(self, workspace_id: str | None, space_ids: Sequence[str]) -> bool:
        """Whether the property's guests get a "resend my key" link (properties.toml)."""
        return self.properties.guest_resend_link(workspace_id, space_ids)

    def render_sms(self, message: str, context: Mapping[str, object]) -> str:
        return self.render_part(message, "sms.txt", context).strip()

    def render_email(self, message: str, context: Mapping[str, object]) -> RenderedEmail:
        subject = self.render_part(message, "email_subject.txt", context)
        text = _BLANK_LINES.sub("\n\n", self.render_part(message, "email.txt", context).strip())
        html = self.render_part(message, "email.html", context)
        return RenderedEmail(
            subject=" ".join(subject.split()),
            text=text + "\n",
            html=self._inline_css(html, self.part_name(message, "email.html", context)),
        )

    def part_name(self, message: str, part: str, context: Mapping[str, object]) -> str:
        """`pin_code/fr/sms.txt`: the file a part is rendered from for this context."""
        wanted = context.get("locale")
        locale = self.locale_for(message, wanted if isinstance(wanted, str) else None)
        folder = self.locale_folders.get(message, {}).get(locale, locale)
        return f"{message}/{folder}/{part}"

    def render_part(self, message: str, part: str, context: Mapping[str, object]) -> str:
        """Render one file of a message as written (no stripping)."""
        if not _NAME.fullmatch(message) or part not in GUEST_PARTS:
            raise TemplateError(f"there is no message {message!r} with a part {part!r}")
        name = self.part_name(message, part, context)
        if name in self.files.unreadable:
            raise TemplateError(f"{name} {self.files.unreadable[name]}", where=name)
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
        with render_budget():
            chunks = cast(Generator[str, None, None], template.generate(dict(context)))
            try:
                return _join_capped(chunks, name)
            except Exception as exc:
                error = self._render_error(exc, name, context)
            finally:
                chunks.close()
        # Raised out here, not in `except`, so the original error (its text may quote a context
        # value, such as a PIN) is not chained to it.
        raise error

    def _inline_css(self, html: str, name: str) -> str:
        try:
            # No stylesheet is fetched, from the network or the disk: only <style> in the files.
            inlined = css_inline.inline(html, load_remote_stylesheets=False, keep_at_rules=True)
        except ValueError as exc:
            raise TemplateError(f"the HTML's styles cannot be inlined: {exc}", where=name) from None
        return inlined.strip() + "\n"

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
        elif isinstance(exc, RecursionError):
            reason = "not allowed in a template: it calls or includes itself without end"
        else:
            reason = f"cannot render: {type(exc).__name__}: {exc}"
        return TemplateError(_hide_values(reason, context), where=where)

    def _relative(self, filename: str | None) -> str | None:
        root = self.templates_dir.as_posix() + "/"
        if filename and filename.startswith(root):
            return filename.removeprefix(root)
        return None

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
