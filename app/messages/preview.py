"""`keycourier templates preview`: one message as a guest (or the front desk) would get it,
rendered from the templates folder as it is on disk now, before it goes live.

The sample stay fills the message (Alex Rivera, Room 204, PIN 1234). With `--event FILE`, a
Seam webhook event (as Seam sends it, e.g. copied from Seam's webhook log) picks the workspace,
and so the language, time zone and hotel name from properties.toml, and its ids and code.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from app.errors import PreviewError
from app.messages.catalog import MESSAGES
from app.messages.rendering import Renderer
from app.messages.sms_segments import count_segments
from app.messages.variables import SAMPLE_PIN, sample_context, sample_method


@dataclass(frozen=True)
class Preview:
    text: str  # what to print
    html_path: Path | None  # the HTML email, saved to open in a browser


def read_event(path: Path) -> dict[str, object]:
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PreviewError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PreviewError(f"{path} is not a JSON Seam event: {exc}") from None
    if not isinstance(event, dict):
        raise PreviewError(f"{path} is not a JSON Seam event (expected an object)")
    return event


def preview_context(
    renderer: Renderer, message: str, *, locale: str | None, event: dict[str, object] | None
) -> dict[str, object]:
    event = event or {}
    workspace_id = event.get("workspace_id")
    audience = renderer.audience(
        message, workspace_id if isinstance(workspace_id, str) else None, []
    )
    if locale:
        audience = replace(audience, locale=renderer.locale_for(message, locale))
    code = event.get("code")
    context = sample_context(
        message, audience, sample_method(message, code if isinstance(code, str) else SAMPLE_PIN)
    )
    method_id = event.get("access_method_id")
    grant_ids = event.get("access_grant_ids")
    if isinstance(method_id, str):
        context["access_method_id"] = method_id
    if isinstance(grant_ids, list) and grant_ids and isinstance(grant_ids[0], str):
        context["access_grant_id"] = grant_ids[0]
    return context


@dataclass(frozen=True)
class Rendered:
    """One message rendered for a preview: the parts its channels would send."""

    message: str
    locale: str
    heading: str
    sms: str | None = None
    sms_part: str | None = None
    sms_segments: str | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None


def render_preview(
    templates_dir: Path,
    message: str,
    *,
    locale: str | None = None,
    channel: str | None = None,
    event: dict[str, object] | None = None,
    default_locale: str = "en",
    default_timezone: str = "UTC",
) -> Rendered:
    """Render `message`; raises PreviewError for a bad request, TemplateError for a bad file."""
    if message not in MESSAGES:
        raise PreviewError(
            f"there is no message {message!r}; the messages are: {', '.join(MESSAGES)}"
        )
    renderer = Renderer.from_folder(
        templates_dir, default_locale=default_locale, default_timezone=default_timezone
    )
    has_sms = "sms.txt" in MESSAGES[message]
    if channel == "sms" and not has_sms:
        raise PreviewError(f"{message} is sent by email only")
    context = preview_context(renderer, message, locale=locale, event=event)
    heading = f"{message} in {context['locale']}"
    if locale and str(context["locale"]) != locale:
        heading += f" (there is no {locale} folder for it, so DEFAULT_LOCALE is used)"
    rendered = Rendered(message, str(context["locale"]), heading)
    if channel in (None, "sms") and has_sms:
        sms = renderer.render_sms(message, context)
        rendered = replace(
            rendered,
            sms=sms,
            sms_part=renderer.part_name(message, "sms.txt", context),
            sms_segments=count_segments(sms).describe(),
        )
    if channel in (None, "email"):
        email = renderer.render_email(message, context)
        rendered = replace(rendered, subject=email.subject, text=email.text, html=email.html)
    return rendered


def preview(
    templates_dir: Path,
    message: str,
    *,
    locale: str | None = None,
    channel: str | None = None,
    event: dict[str, object] | None = None,
    default_locale: str = "en",
    default_timezone: str = "UTC",
    html_dir: Path | None = None,
) -> Preview:
    """Render `message` as text for a terminal, the HTML email saved to a file."""
    rendered = render_preview(
        templates_dir,
        message,
        locale=locale,
        channel=channel,
        event=event,
        default_locale=default_locale,
        default_timezone=default_timezone,
    )
    lines = [rendered.heading]
    html_path = None
    if rendered.sms is not None:
        lines += ["", f"--- SMS ({rendered.sms_part}: {rendered.sms_segments})", rendered.sms]
    if rendered.html is not None and rendered.text is not None:
        folder = Path(html_dir or tempfile.mkdtemp(prefix="keycourier-preview-"))
        html_path = folder / f"{message}.{rendered.locale}.html"
        html_path.write_text(rendered.html, encoding="utf-8")
        lines += [
            "",
            f"--- Email subject: {rendered.subject}",
            "",
            "--- Email text part",
            rendered.text.rstrip(),
            "",
            f"--- Email HTML part: open {html_path.resolve().as_uri()} in a browser",
        ]
    return Preview("\n".join(lines) + "\n", html_path)
