"""Signing in and out of the console.

One answer for every failure ("that name and password do not match"), whether the name
exists or not, and an unknown name's password is checked against a decoy hash, through the
same gate, at the same cost: neither the message, the lockout nor the time taken tells which
names exist.

The lockout, kept in the ledger so that it holds across web processes and restarts (a keyed
hash of the name or address, never the name): before a password is checked, the sign-in takes
an attempt slot for its name (OPS_LOCKOUT_FAILURES per OPS_LOCKOUT_MINUTES) and for its client
address, whatever the names (OPS_LOCKOUT_ADDRESS_FAILURES per OPS_LOCKOUT_MINUTES), in one
transaction (app/ledger/console.py). No slot, no check: however many guesses arrive at once,
at most the limit are ever evaluated. The name's last slot taken locks it, and a failure then
answers "locked". A match clears the name's count and gives the address its slot back.

How many checks run at once is bounded too (app/console/throttle.py): a sign-in that finds
every check and every place in the queue taken is answered 503 with Retry-After at once.

Signing in opens a session in the ledger (app/console/sessions.py); signing out revokes it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Callable
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from app.console.context import Console, Endpoint, safe_next
from app.console.passwords import check_decoy, verify_password
from app.console.throttle import client_address
from app.errors import SignInBusy
from app.ledger.models import utcnow
from app.ledger.sign_in import SignInSlots

log = logging.getLogger(__name__)

NO_MATCH = "That name and password do not match."
BUSY = "The console is busy signing others in: try again in a moment."
BUSY_RETRY_SECONDS = 2


def _key(console: Console, kind: bytes, value: str) -> str:
    assert console.settings.ops_session_secret is not None
    key = console.settings.ops_session_secret.get_secret_value().encode()
    return hmac.new(key, kind + b"\x00" + value.encode(), hashlib.sha256).hexdigest()


def _locked_message(by_address: bool, until: datetime) -> str:
    what = "from this address" if by_address else "with this name"
    return (
        f"Too many failed sign-ins {what}. "
        f"Try again after {until.strftime('%H:%M')} UTC, or ask another operator."
    )


def _retry_after(until: datetime) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil((until - utcnow()).total_seconds())))}


def _not_set_up(console: Console, request: Request) -> Response:
    """The console has no users or no session secret: the steps that set it up, with 503 (it
    cannot be used yet), instead of a form that could only fail."""
    settings = console.settings
    missing = [
        name
        for name, value in (("OPS_USERS", settings.ops_users),
                            ("OPS_SESSION_SECRET", settings.ops_session_secret))
        if value is None
    ]  # fmt: skip
    return console.render(
        request, "sign_in.html", {"enabled": False, "missing": missing}, status_code=503
    )


def sign_in_page(console: Console) -> Endpoint:
    async def page(request: Request) -> Response:
        if not console.enabled:
            return _not_set_up(console, request)
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
        if not console.enabled:
            # No session can exist, so no CSRF token: answering the form's 403 would mislead.
            return _not_set_up(console, request)
        form = await console.form(request)
        name = str(form.get("name", "")).strip()[:100]
        password = str(form.get("password", ""))
        next_path = safe_next(str(form.get("next", "")))

        def again(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
            response = console.render(
                request,
                "sign_in.html",
                {"next": next_path, "enabled": console.enabled, "error": message, "name": name},
                status_code=status,
            )
            response.headers.update(headers or {})
            return response

        if not name:
            return again(NO_MATCH, 401)
        try:
            async with console.password_checks.admit():
                return await _sign_in(console, request, name, password, next_path, again)
        except SignInBusy:
            refused = console.password_checks.refused_to_report()
            if refused:
                log.warning("console sign-ins refused (503), every password check taken: %d "
                            "since the last report", refused)  # fmt: skip
            return again(BUSY, 503, {"Retry-After": str(BUSY_RETRY_SECONDS)})

    return post


async def _sign_in(
    console: Console,
    request: Request,
    name: str,
    password: str,
    next_path: str,
    again: Callable[..., Response],
) -> Response:
    settings = console.settings
    name_key = _key(console, b"sign-in", name.lower())
    address_key = _key(console, b"sign-in address", client_address(request))
    user = console.users.get(name.lower())
    actor = user.name if user else "(unknown name)"
    slots: SignInSlots = await console.run(
        console.store.take_sign_in_slots,
        [(address_key, settings.ops_lockout_address_failures),
         (name_key, settings.ops_lockout_failures)],
        now=utcnow(),
        window=console.lockout,
    )  # fmt: skip
    if not slots.granted:
        assert slots.locked_until is not None
        by_address = slots.refused_by == 0
        await console.audit(actor, "sign_in", None, "locked_out",
                            "client address locked" if by_address else None)  # fmt: skip
        return again(
            _locked_message(by_address, slots.locked_until), 429, _retry_after(slots.locked_until)
        )
    async with console.password_checks.checking():
        if user is None:
            await console.run(check_decoy, password)
            matched = False
        else:
            matched = await console.run(verify_password, password, user.password_hash)
    if not matched:
        await console.audit(actor, "sign_in", None, "failed")
        for index, until in enumerate(slots.locks):  # a last slot: locked now
            if until is not None:
                return again(_locked_message(index == 0, until), 429, _retry_after(until))
        return again(NO_MATCH, 401)
    assert user is not None
    await console.run(console.store.sign_in_succeeded, name_key, [(address_key, slots.windows[0])])
    await console.audit(user.name, "sign_in", None, "ok")
    session = await console.start_session(request, user)
    return console.redirect(next_path, session, request=request)


def sign_out(console: Console) -> Endpoint:
    async def post(request: Request) -> Response:
        await console.form(request)
        session = await console.end_session(request)
        await console.audit(console.actor(request), "sign_out", None, "ok")
        return console.redirect("/ops/sign-in", session, request=request)

    return post
