"""What every console page shares: the settings, the ledger, the signed-in user and what their
role and scope allow (app/console/access.py), the hotel names, rendering, CSRF checks and the
audit log. Blocking work (the ledger, Seam, the providers) runs in a thread through
`Console.run`, never on the event loop."""

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

from app.console.access import Access, Permission, Role, read_access_file
from app.console.hotels import HotelNames
from app.console.passwords import OpsUser, parse_users
from app.console.sessions import Session, SessionCookies, id_hash, new_session
from app.console.throttle import PasswordChecks
from app.console.tokens import ApiToken, parse_tokens
from app.errors import ConfigError, LedgerUnavailable
from app.ledger.console import ConsoleStore
from app.ledger.models import MAX_ROW_ID, AuditEntry, utcnow
from app.ledger.scope import Scope as LedgerScope
from app.ledger.store import Ledger
from app.messages.catalog import PROPERTIES_FILE
from app.messages.properties import countries_in
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
# A session's last use is written at most this often (not once per page), and at most a quarter
# of the idle timeout after the last write.
TOUCH_EVERY = timedelta(minutes=1)


class Console:
    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = ConsoleStore(ledger.engine)
        self.users: dict[str, OpsUser] = {}
        self.cookies: SessionCookies | None = None
        self._countries: tuple[int, set[str]] | None = None
        if settings.ops_users is not None:
            settings.require("OPS_SESSION_SECRET")
            assert settings.ops_session_secret is not None
            self.users = parse_users(settings.ops_users.get_secret_value())
            secret = settings.ops_session_secret.get_secret_value()
            if len(secret) < 32:
                raise ConfigError("OPS_SESSION_SECRET is too short: use 32 characters or more")
            self.cookies = SessionCookies(secret, settings.ops_session_hours * 3600)
        self.tokens: list[ApiToken] = (
            parse_tokens(settings.api_tokens.get_secret_value()) if settings.api_tokens else []
        )
        self.access_file = read_access_file(settings.access_file)
        self.access_file.check_names(
            [user.name for user in self.users.values()], [token.name for token in self.tokens]
        )
        self.hotels = HotelNames(settings.templates_dir)
        self.lockout = timedelta(minutes=settings.ops_lockout_minutes)
        self.lifetime = timedelta(hours=settings.ops_session_hours)
        self.idle = timedelta(minutes=settings.ops_session_idle_minutes)
        self.password_checks = PasswordChecks(
            settings.ops_sign_in_concurrency, settings.ops_sign_in_queue
        )
        env = Environment(
            loader=PackageLoader("app.console", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates = Jinja2Templates(env=env)

    def countries(self) -> set[str]:
        """The hotels' countries in properties.toml, where a national number searched for
        may be from; read again only when the file changes (one stat per search)."""
        path = self.settings.templates_dir / PROPERTIES_FILE
        try:
            changed = path.stat().st_mtime_ns
        except OSError:
            return set()
        if self._countries is None or self._countries[0] != changed:
            self._countries = (changed, countries_in(path))
        return self._countries[1]

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
        """Who is asking, as the audit log names them: the signed-in user, or for the API
        `api:` and the token's name (never the token)."""
        client = request.scope.get("state", {}).get("api_client")
        if isinstance(client, ApiToken):
            return f"api:{client.name}"
        user = self.user(request)
        assert user is not None, "the guard lets only signed-in users reach this page"
        return user

    def access(self, request: Request) -> Access:
        """What the signed-in user, or the API token, may do and see (ACCESS_FILE)."""
        client = request.scope.get("state", {}).get("api_client")
        if isinstance(client, ApiToken):
            access = self.access_file.token(client.name)
            if not self.access_file.names_token(client.name):
                # Writing through the API (resend, encode) is given to a token by name: one
                # handed out to read before the API could write cannot start to.
                return Access(Role.VIEWER, access.scope)
            return access
        return self.access_file.user(self.actor(request))

    def scope(self, request: Request) -> LedgerScope:
        """Whose deliveries this request may see: every read of the ledger takes it."""
        return self.access(request).scope

    def guard(self, permission: Permission, endpoint: Endpoint) -> Endpoint:
        """`endpoint`, refused with 403 to a role without `permission` (before it reads
        anything: the refusal says nothing about a record)."""

        async def guarded(request: Request) -> Response:
            access = self.access(request)
            if not access.may(permission):
                raise HTTPException(403, f"Your role ({access.role}) may not {permission}.")
            return await endpoint(request)

        return guarded

    async def read_session(self, request: Request) -> Session | None:
        """The cookie's session, signed in when the ledger has it alive for a user whose
        password has not changed since; signed out otherwise (and revoked, if it lingered)."""
        if self.cookies is None:
            return None
        session = self.cookies.read(request)
        if session is None or session.sid is None:
            return session
        key = id_hash(session.sid)
        found = await self.run(
            self.store.live_session,
            key,
            now=utcnow(),
            idle=self.idle,
            touch_after=min(TOUCH_EVERY, self.idle / 4),
        )
        if found is None:
            return session.signed_out()  # signed out, idle, expired, or never was
        user = self.users.get(found.user_name.lower())
        if user is None or found.password_tag != self.cookies.tag(user.password_hash):
            await self.run(self.store.end_session, key)  # removed, or the password changed
            return session.signed_out()
        return Session(csrf=session.csrf, sid=session.sid, user=user.name)

    async def start_session(self, request: Request, user: OpsUser) -> Session:
        """A new session for `user` in the ledger (ending the one this browser had)."""
        assert self.cookies is not None
        old = self.session(request).sid
        session = self.session(request).signed_in(user.name)
        assert session.sid is not None
        await self.run(
            self.store.start_session,
            id_hash(session.sid),
            user_name=user.name,
            password_tag=self.cookies.tag(user.password_hash),
            now=utcnow(),
            lifetime=self.lifetime,
            idle=self.idle,
            replaces=id_hash(old) if old else None,
        )
        return session

    async def end_session(self, request: Request) -> Session:
        """Revoke this request's session in the ledger: its cookie, or any copy, is no longer
        signed in."""
        session = self.session(request)
        if session.sid is not None:
            await self.run(self.store.end_session, id_hash(session.sid))
        return session.signed_out()

    def row_id(self, request: Request, name: str) -> int:
        """A path's id, 404 when no row can have it (past what an Integer key holds)."""
        value = request.path_params[name]
        if not isinstance(value, int) or not 0 < value <= MAX_ROW_ID:
            raise HTTPException(404, "there is no such record")
        return value

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
        access = self.access_file.user(session.user) if session.user else None
        may = {p.name.lower(): access is not None and access.may(p) for p in Permission}
        response = self.templates.TemplateResponse(
            request,
            name,
            {"user": session.user, "csrf_token": session.csrf, "path": request.url.path,
             "role": access.role if access else None, "may": may, **(context or {})},
            status_code=status_code,
            headers=SECURITY_HEADERS,
        )  # fmt: skip
        if self.cookies is not None:
            found = self.cookies.read(request)
            if found is None or found.cookie != session.cookie:
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
        if any(isinstance(value, str) and "\x00" in value for value in form.values()):
            raise HTTPException(400, "A field holds a NUL character.")
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
        if not 0 < entry_id <= MAX_ROW_ID:
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
        if has_nul(scope):
            await refuse_nul(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/ops/static/"):  # the CSS and JS: no session to read
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            session = await self.console.read_session(request)
        except LedgerUnavailable:
            await Response(
                "the ledger is unavailable: try again in a moment\n",
                status_code=503,
                media_type="text/plain",
                headers={"Retry-After": "5"},
            )(scope, receive, send)
            return
        scope.setdefault("state", {})["ops_session"] = session or new_session()
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


def has_nul(scope: Scope) -> bool:
    """A NUL in the query string (raw or %00): no ledger column can hold one."""
    query = bytes(scope.get("query_string", b""))
    return b"\x00" in query or b"%00" in query


async def refuse_nul(scope: Scope, receive: Receive, send: Send) -> None:
    response = Response("a query parameter holds a NUL character\n", status_code=400,
                        media_type="text/plain")  # fmt: skip
    await response(scope, receive, send)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    if value and value.startswith("/ops/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ops/"
