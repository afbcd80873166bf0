"""The console's session: a cookie signed with OPS_SESSION_SECRET (itsdangerous) holding a CSRF
token and, once signed in, a random session id (256 bits). The session itself lives in the
ledger (`ops_sessions`, app/ledger/console.py), keyed by the SHA-256 of that id, so that it can
be revoked: signing out deletes it (a copy of the cookie is then worth nothing), and so does
changing the user's password (the row keeps a tag of the password hash it was opened with),
OPS_SESSION_IDLE_MINUTES without a request, or OPS_SESSION_HOURS after sign-in.

The cookie is HttpOnly, SameSite=Lax, scoped to /ops, and Secure when the console is served
over https (behind a proxy: `keycourier serve --forwarded-allow-ips` makes uvicorn see it).
Every visitor gets one, signed in or not: the sign-in form needs a CSRF token too. Only a
sign-in writes a row: a visitor who never signs in costs the ledger nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "keycourier_ops"
COOKIE_PATH = "/ops"


@dataclass(frozen=True)
class Session:
    """What a request's cookie and the ledger say: `sid` (the random id, only in the cookie)
    and `user` are set once signed in; `user` only when the ledger has the session alive."""

    csrf: str
    sid: str | None = None
    user: str | None = None

    def signed_in(self, user: str) -> Session:
        # A new id and a new CSRF token at sign-in: neither seen before it is of use after.
        return Session(csrf=secrets.token_urlsafe(24), sid=secrets.token_urlsafe(32), user=user)

    def signed_out(self) -> Session:
        return Session(csrf=secrets.token_urlsafe(24))

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())

    @property
    def cookie(self) -> tuple[str, str | None]:
        """What the cookie holds: the CSRF token and the session id."""
        return self.csrf, self.sid


def id_hash(sid: str) -> str:
    """The key of a session in the ledger: the id is random, so a plain SHA-256 will do."""
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionCookies:
    def __init__(self, secret: str, max_age_seconds: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="keycourier-ops-session")
        self._tag_key = hashlib.sha256(b"keycourier ops user tag\x00" + secret.encode()).digest()
        self.max_age = int(max_age_seconds)

    def tag(self, password_hash: str) -> str:
        """A tag of a user's password hash: a session opened under another hash is over."""
        return hmac.new(self._tag_key, password_hash.encode(), "sha256").hexdigest()

    def read(self, request: Request) -> Session | None:
        """The cookie's CSRF token and session id (`user` is for the ledger to say)."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age)
        except BadSignature:  # tampered, or older than max_age (SignatureExpired)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        sid = data.get("sid")
        return Session(csrf=data["csrf"], sid=sid if isinstance(sid, str) and sid else None)

    def write(self, request: Request, response: Response, session: Session) -> None:
        value = self._serializer.dumps({"csrf": session.csrf, "sid": session.sid})
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )


def new_session() -> Session:
    return Session(csrf=secrets.token_urlsafe(24))
