"""What every console page shares: the settings, the ledger, the signed-in user, rendering,
CSRF checks and the audit log. Blocking work (the ledger, Seam, the providers) runs in a thread
through `Console.run`, never on the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from app.console.passwords import OpsUser, parse_users
from app.console.sessions import Session, SessionCookies, new_session
from app.errors import ConfigError
from app.ledger.console import ConsoleStore
from app.ledger.models import AuditEntry
from app.ledger.store import Ledger
from app.settings import Settings

T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]

# Served to every console page: no script or style from elsewhere, no framing, forms post
# only here. Inline styles stay allowed for the email preview (its HTML carries them).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PUBLIC_PATHS = ("/ops/sign-in", "/ops/static/")


class Console:
    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = ConsoleStore(ledger.engine)
        self.users: dict[str, OpsUser] = {}
        self.cookies: SessionCookies | None = None
        if settings.ops_users is not None:
            settings.require("OPS_SESSION_SECRET")
            assert settings.ops_session_secret is not None
            self.users = parse_users(settings.ops_users.get_secret_value())
            secret = settings.ops_session_secret.get_secret_value()
            if len(secret) < 32:
                raise ConfigError("OPS_SESSION_SECRET is too short: use 32 characters or more")
            self.cookies = SessionCookies(secret, settings.ops_session_hours * 3600)
        self.lockout = timedelta(minutes=settings.ops_lockout_minutes)
        env = Environment(
            loader=PackageLoader("app.console", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates = Jinja2Templates(env=env)

    @property
    def enabled(self) -> bool:
        return self.cookies is not None and bool(self.users)

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(partial(function, *args, **kwargs))

    # -- sessions --------------------------------------------------------------------------

    def session(self, request: Request) -> Session:
        """This request's session as the guard read it (a fresh anonymous one if none)."""
        found = request.scope.get("state", {}).get("ops_session")
        return found if isinstance(found, Session) else new_session()

    def user(self, request: Request) -> str | None:
        return self.session(request).user

    def actor(self, request: Request) -> str:
        user = self.user(request)
        assert user is not None, "the guard lets only signed-in users reach this page"
        return user

    def read_session(self, request: Request) -> Session | None:
        if self.cookies is None:
            return None
        session = self.cookies.read(request)
        if session is None or session.user is None:
            return session
        user = self.users.get(session.user.lower())
        if user is None or session.tag != self.cookies.tag(user.password_hash):
            return session.signed_out()  # removed, or the password changed since
        return session

    # -- responses -------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
        session: Session | None = None,
    ) -> Response:
        session = session or self.session(request)
        response = self.templates.TemplateResponse(
            request,
            name,
            {"user": session.user, "csrf_token": session.csrf, "path": request.url.path,
             **(context or {})},
            status_code=status_code,
            headers=SECURITY_HEADERS,
        )  # fmt: skip
        if self.cookies is not None and self.cookies.read(request) != session:
            self.cookies.write(request, response, session)
        return response

    def redirect(
        self, location: str, session: Session | None = None, *, request: Request | None = None
    ) -> Response:
        """A 303 to `location`; with `session` (and the request), the new session's cookie."""
        response = RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
        if session is not None and request is not None and self.cookies is not None:
            self.cookies.write(request, response, session)
        return response

    async def form(self, request: Request) -> FormData:
        """The posted form, once its CSRF token matches the session's; 403 otherwise."""
        form = await request.form(max_files=0, max_fields=50)
        token = form.get("csrf_token")
        session = self.cookies.read(request) if self.cookies is not None else None
        if session is None or not session.csrf_matches(token if isinstance(token, str) else None):
            raise HTTPException(403, "The form expired or did not come from this console: "
                                     "reload the page and try again.")  # fmt: skip
        return form

    async def audit(
        self,
        actor: str,
        action: str,
        target: str | None,
        outcome: str,
        detail: str | None = None,
    ) -> int:
        return await self.run(
            self.store.record_audit,
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            detail=detail,
        )

    async def audit_result(self, request: Request, target: str) -> AuditEntry | None:
        """The audit entry an action redirected with (?result=ID), if it is about `target`:
        how a page shows what the action it came from did."""
        try:
            entry_id = int(request.query_params["result"])
        except (KeyError, ValueError):
            return None
        entry = await self.run(self.store.get_audit, entry_id)
        return entry if entry is not None and entry.target == target else None


class RequireSignIn:
    """Every /ops path but the sign-in page and the static files needs a signed-in user:
    GET and HEAD are sent to sign in, anything else is refused with 403. A route added to the
    console is guarded without asking (tests/test_console_auth.py enumerates them)."""

    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        session = self.console.read_session(request)
        scope.setdefault("state", {})["ops_session"] = session or new_session()
        path = scope["path"]
        public = any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC_PATHS)
        if public or (session is not None and session.user is not None):
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD"):
            target = "/ops/sign-in?next=" + quote(path, safe="/")
            response: Response = RedirectResponse(target, status_code=303)
        else:
            response = Response("sign in first\n", status_code=403, media_type="text/plain")
        await response(scope, receive, send)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    if value and value.startswith("/ops/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ops/"
