"""The console's session: a cookie signed with OPS_SESSION_SECRET (itsdangerous), holding the
signed-in name, a CSRF token, and a tag of the user's password hash so that changing a
password (or removing the user from OPS_USERS) ends their sessions.

The cookie is HttpOnly, SameSite=Lax, scoped to /ops, and Secure when the console is served
over https (behind a proxy: `keycourier serve --forwarded-allow-ips` makes uvicorn see it).
Every visitor gets one, signed in or not: the sign-in form needs a CSRF token too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "keycourier_ops"
COOKIE_PATH = "/ops"


@dataclass(frozen=True)
class Session:
    csrf: str
    user: str | None = None
    tag: str | None = None

    def signed_in(self, user: str, tag: str) -> Session:
        # A new CSRF token at sign-in: one seen before it is of no use after.
        return Session(csrf=secrets.token_urlsafe(24), user=user, tag=tag)

    def signed_out(self) -> Session:
        return replace(self, user=None, tag=None, csrf=secrets.token_urlsafe(24))

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class SessionCookies:
    def __init__(self, secret: str, max_age_seconds: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="keycourier-ops-session")
        self._tag_key = hashlib.sha256(b"keycourier ops user tag\x00" + secret.encode()).digest()
        self.max_age = int(max_age_seconds)

    def tag(self, password_hash: str) -> str:
        return hmac.new(self._tag_key, password_hash.encode(), "sha256").hexdigest()[:16]

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age)
        except BadSignature:  # tampered, or older than max_age (SignatureExpired)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        user, tag = data.get("user"), data.get("tag")
        return Session(
            csrf=data["csrf"],
            user=user if isinstance(user, str) else None,
            tag=tag if isinstance(tag, str) else None,
        )

    def write(self, request: Request, response: Response, session: Session) -> None:
        value = self._serializer.dumps({"csrf": session.csrf, "user": session.user,
                                        "tag": session.tag})  # fmt: skip
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
