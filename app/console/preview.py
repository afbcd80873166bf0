"""The template preview page: app/messages/preview.py's rendering, in the browser. The email's
HTML is shown in a sandboxed frame (no scripts, no same-origin access)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.console.context import Console, Endpoint
from app.errors import PreviewError, TemplateError
from app.messages.catalog import MESSAGES
from app.messages.preview import Rendered, render_preview


def _page(
    console: Console,
    request: Request,
    *,
    message: str = "",
    locale: str = "",
    channel: str = "",
    rendered: Rendered | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return console.render(
        request,
        "templates.html",
        {
            "messages": list(MESSAGES),
            "message": message,
            "locale": locale,
            "channel": channel,
            "rendered": rendered,
            "error": error,
        },
        status_code=status_code,
    )


def preview_form(console: Console) -> Endpoint:
    async def page(request: Request) -> Response:
        return _page(console, request)

    return page


def preview_post(console: Console) -> Endpoint:
    async def post(request: Request) -> Response:
        form = await console.form(request)
        message = str(form.get("message", ""))[:100]
        locale = str(form.get("locale", "")).strip()[:20]
        channel = str(form.get("channel", ""))
        if channel not in ("", "sms", "email"):
            channel = ""
        settings = console.settings
        target = f"template {message}" + (f" ({locale})" if locale else "")
        try:
            rendered = await console.run(
                render_preview,
                settings.templates_dir,
                message,
                locale=locale or None,
                channel=channel or None,
                default_locale=settings.default_locale,
                default_timezone=settings.timezone,
            )
        except (PreviewError, TemplateError) as exc:
            await console.audit(console.actor(request), "preview", target, "error", str(exc))
            return _page(console, request, message=message, locale=locale, channel=channel,
                         error=str(exc), status_code=400)  # fmt: skip
        await console.audit(console.actor(request), "preview", target, "ok")
        return _page(
            console, request, message=message, locale=locale, channel=channel, rendered=rendered
        )

    return post
