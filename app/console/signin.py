"""Signing in and out of the console.

One answer for every failure ("that name and password do not match"), whether the name
exists or not, and a name that failed OPS_LOCKOUT_FAILURES times within OPS_LOCKOUT_MINUTES is
locked for OPS_LOCKOUT_MINUTES, known or not: neither the message nor the lockout tells which
names exist. The count is kept in the ledger (a keyed hash of the name, never the name), so
it holds across web processes and restarts.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request
from starlette.responses import Response

from app.console.context import Console, Endpoint, safe_next
from app.console.passwords import check_decoy, verify_password
from app.ledger.models import utcnow

NO_MATCH = "That name and password do not match."


def _name_key(console: Console, name: str) -> str:
    assert console.settings.ops_session_secret is not None
    key = console.settings.ops_session_secret.get_secret_value().encode()
    return hmac.new(key, b"sign-in\x00" + name.lower().encode(), hashlib.sha256).hexdigest()


def _locked_message(until_text: str) -> str:
    return (
        "Too many failed sign-ins with this name. "
        f"Try again after {until_text} UTC, or ask another operator."
    )


def sign_in_page(console: Console) -> Endpoint:
    async def page(request: Request) -> Response:
        if console.user(request) is not None:
            return console.redirect(safe_next(request.query_params.get("next")))
        return console.render(
            request,
            "sign_in.html",
            {"next": safe_next(request.query_params.get("next")), "enabled": console.enabled},
        )

    return page


def sign_in_post(console: Console) -> Endpoint:
    async def post(request: Request) -> Response:
        form = await console.form(request)
        name = str(form.get("name", "")).strip()[:100]
        password = str(form.get("password", ""))
        next_path = safe_next(str(form.get("next", "")))

        def again(message: str, status: int) -> Response:
            return console.render(
                request,
                "sign_in.html",
                {"next": next_path, "enabled": console.enabled, "error": message, "name": name},
                status_code=status,
            )

        if not console.enabled or not name:
            return again(NO_MATCH, 401)
        key = _name_key(console, name)
        now = utcnow()
        user = console.users.get(name.lower())
        actor = user.name if user else "(unknown name)"
        locked = await console.run(console.store.locked_until, key, now)
        if locked is not None:
            await console.audit(actor, "sign_in", None, "locked_out")
            return again(_locked_message(locked.strftime("%H:%M")), 429)
        if user is None:
            await console.run(check_decoy, password)
            matched = False
        else:
            matched = await console.run(verify_password, password, user.password_hash)
        if not matched:
            locked = await console.run(
                console.store.sign_in_failed,
                key,
                now=now,
                max_failures=console.settings.ops_lockout_failures,
                lockout=console.lockout,
            )
            await console.audit(actor, "sign_in", None, "failed")
            if locked is not None:
                return again(_locked_message(locked.strftime("%H:%M")), 429)
            return again(NO_MATCH, 401)
        assert user is not None
        assert console.cookies is not None
        await console.run(console.store.sign_in_succeeded, key)
        await console.audit(user.name, "sign_in", None, "ok")
        tag = console.cookies.tag(user.password_hash)
        session = console.session(request).signed_in(user.name, tag)
        return console.redirect(next_path, session, request=request)

    return post


def sign_out(console: Console) -> Endpoint:
    async def post(request: Request) -> Response:
        await console.form(request)
        await console.audit(console.actor(request), "sign_out", None, "ok")
        session = console.session(request).signed_out()
        return console.redirect("/ops/sign-in", session, request=request)

    return post
