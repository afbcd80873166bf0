"""The guest's page behind their "resend my key" link: GET shows it, POST sends the key again.

    GET  /k/{token}   the hotel's name, where the key would go (masked), and one button
    POST /k/{token}   re-read Seam and send the current key to the guest's destination on file,
                      on the same channel (app/delivery/resend.py, so the send path's
                      idempotence, claims and fallback hold); audited as "guest link"

What a visitor is told, and nothing more: 404 for a token that is malformed, forged, altered or
names no guest's key (one page for all of them, so none tells which); 410 once it has expired
or the hotel turned the link off, and when Seam no longer has the key issued (revoked, deleted);
429 when the stay's GUEST_LINK_MAX_RESENDS are used, or one address asked too often; 409 while
a message of the key is still on its way; 503 when Seam or the ledger cannot be reached. The
key itself is never on the page: only where it was sent, masked.

A GET changes nothing (link previews and scanners open links): only the button's POST sends.
The token is the capability, so the form needs no CSRF token: a page elsewhere that posts it
could as well post it itself, and the answer goes to the guest's own phone or mailbox. No cookie
is set; the page has no script, no resource from elsewhere, and is sent with no-referrer (the
token is in its URL), no-store and frame-ancestors 'none'.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.console.throttle import client_address
from app.context import Context
from app.delivery.guest_links import LinkToken, read, verify
from app.delivery.resend import GUEST_LINK_REASON, ResendResult, resend
from app.errors import BrokerUnavailable, ConfigError, KeycourierError, LedgerUnavailable
from app.guest.words import words_for
from app.ledger.console import ConsoleStore
from app.ledger.guest_links import GuestLinkStore, stay_key
from app.ledger.models import Delivery, utcnow
from app.ledger.store import Ledger
from app.messages.rendering import Templates
from app.ports import Queued
from app.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

ACTOR = "guest link"
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
# Seam says the key is not there to send (any more): revoked while it is re-programmed, or gone.
GONE = frozenset({"access_method_deleted", "not_issued", "access_grant_deleted", "guest_deleted"})
STYLE = (
    "body{margin:0;background:#f3f4f6;color:#1f2937;font:17px/1.5 system-ui,-apple-system,"
    "'Segoe UI',Roboto,Arial,sans-serif}main{max-width:30rem;margin:0 auto;padding:2rem 1.25rem}"
    ".hotel{margin:0 0 .25rem;color:#6b7280;font-size:.95rem}h1{margin:0 0 1rem;font-size:1.5rem;"
    "line-height:1.25}p{margin:0 0 1rem}form{margin:1.5rem 0 0}button{width:100%;padding:"
    ".9rem 1rem;border:0;border-radius:.5rem;background:#1d4ed8;color:#fff;font:inherit;"
    "font-weight:600}button:focus{outline:3px solid #93c5fd;outline-offset:2px}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}


@dataclass(frozen=True)
class Opened:
    """A link that verified: its delivery, the stay it counts against, and the page's words."""

    delivery: Delivery
    stay: str
    language: str
    words: dict[str, str]
    hotel: str


class GuestLinks:
    """The two handlers and what they share."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        context_of: Callable[[], Context],
        queue: Callable[[Sequence[Queued]], None],
        templates: Templates,
    ) -> None:
        self.ledger = ledger
        self.counts = GuestLinkStore(ledger.engine)
        self.console = ConsoleStore(ledger.engine)
        self.context_of = context_of
        self.queue = queue
        self.templates = templates
        self.max_resends = settings.guest_link_max_resends
        self.address_limit = settings.guest_link_address_limit
        self.address_window = timedelta(minutes=settings.guest_link_address_minutes)
        self.default_locale = settings.default_locale
        try:
            self.key: bytes | None = settings.guest_link_key()
        except ConfigError:
            self.key = None  # no key to sign with: no link was ever sent, none opens
        self.env = Environment(
            loader=PackageLoader("app.guest", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(partial(function, *args, **kwargs))

    # -- the two routes ----------------------------------------------------------------------

    async def show(self, request: Request) -> Response:
        opened = await self._open(request)
        if isinstance(opened, Response):
            return opened
        words, delivery = opened.words, opened.delivery
        ask = words.get(f"ask_{delivery.channel}", words["ask_sms"])
        where = ask.format(destination=delivery.destination_masked or "?")
        return self._page(
            200, opened, self._title(opened), [where, words["ask_note"]],
            form=True, request_id=secrets.token_hex(16),
        )  # fmt: skip

    async def ask(self, request: Request) -> Response:
        opened = await self._open(request)
        if isinstance(opened, Response):
            return opened
        form = await request.form(max_files=0, max_fields=5)
        given = form.get("request_id")
        fresh = not (isinstance(given, str) and REQUEST_ID.fullmatch(given))
        request_id = secrets.token_hex(16) if fresh else str(given)
        delivery = opened.delivery
        target = f"delivery {delivery.id}"
        try:
            used = await self.run(
                self.counts.take_resend, opened.stay, self.max_resends, now=utcnow()
            )
            if used is None:
                used_up = f"the {self.max_resends} resends by link of this stay are used"
                await self._audit(target, "limit_reached", used_up)
                words = opened.words
                return self._page(429, opened, words["limit_title"], [words["limit"]])
            result = await self._resend(opened, request_id, used)
        except KeycourierError as exc:  # Seam, the ledger: nothing was sent
            log.warning("guest link resend failed: %s", type(exc).__name__,
                        extra={"delivery_id": delivery.id})  # fmt: skip
            return self._page(503, opened, opened.words["busy_title"], [opened.words["busy"]],
                              headers={"Retry-After": "60"})  # fmt: skip
        return self._answer(opened, result)

    # -- what both routes do first -----------------------------------------------------------

    async def _open(self, request: Request) -> Opened | Response:
        """The link's delivery when it verifies, else the page that says why not."""
        try:
            if not await self._admit(request):
                return self._plain(429, "throttled_title", "throttled", {"Retry-After": "60"})
            token = read(str(request.path_params.get("token", "")))
            delivery = await self._delivery(token)
        except LedgerUnavailable:
            return self._plain(503, "busy_title", "busy", {"Retry-After": "30"})
        if token is None or delivery is None or delivery.user_identity_id is None:
            return self._plain(404, "invalid_title", "invalid")
        if self.key is None or not verify(
            self.key, token, delivery.user_identity_id, delivery.channel
        ):
            log.info("guest link refused: not a valid token")
            return self._plain(404, "invalid_title", "invalid")
        try:
            audience = self.templates.audience(
                delivery.kind, delivery.workspace_id, delivery.space_id_list
            )
            offered = self.templates.guest_resend_link(
                delivery.workspace_id, delivery.space_id_list
            )
        except KeycourierError:  # no templates that pass the check: nothing can be sent now
            return self._plain(503, "busy_title", "busy", {"Retry-After": "60"})
        language, words = words_for(audience.locale)
        guest = delivery.user_identity_id
        opened = Opened(
            delivery,
            stay_key(delivery.access_grant_id, delivery.access_method_id, guest),
            language,
            words,
            audience.property_name,
        )
        if not offered:
            return self._page(410, opened, words["off_title"], [words["off"]])
        if token.expires_at <= utcnow():
            return self._page(410, opened, words["expired_title"], [words["expired"]])
        return opened

    async def _admit(self, request: Request) -> bool:
        """One of the GUEST_LINK_ADDRESS_LIMIT requests the client's address may make per
        GUEST_LINK_ADDRESS_MINUTES (kept in the ledger: every web process counts together)."""
        secret = self.key or b"no guest link key"
        address = hmac.new(
            secret, b"guest link address\x00" + client_address(request).encode(), hashlib.sha256
        ).hexdigest()
        slots = await self.run(
            self.console.take_sign_in_slots,
            [(address, self.address_limit)],
            now=utcnow(),
            window=self.address_window,
        )
        return slots.granted

    async def _delivery(self, token: LinkToken | None) -> Delivery | None:
        if token is None:
            return None
        delivery = await self.run(self.ledger.get_delivery, token.delivery_id)
        if delivery is None or not delivery.message_kind.carries_credential:
            return None
        return delivery

    # -- sending -----------------------------------------------------------------------------

    async def _resend(self, opened: Opened, request_id: str, used: int) -> ResendResult:
        """Plan the resend (Seam read now), hand it to the workers, audit it; the stay's slot
        is given back when nothing new goes out."""
        delivery = opened.delivery
        target = f"delivery {delivery.id}"
        try:
            result = await self.run(
                resend,
                self.context_of(),
                delivery.id,
                actor=ACTOR,
                reason=GUEST_LINK_REASON,
                request_id=f"g-{request_id}",
            )
        except KeycourierError as exc:
            await self.run(self.counts.give_back_resend, opened.stay)
            await self._audit(target, "error", f"Seam or the ledger could not be reached: {exc}")
            raise
        if result.status != "queued":
            await self.run(self.counts.give_back_resend, opened.stay)
        else:
            try:
                await self.run(self.queue, result.next)
            except BrokerUnavailable as exc:
                # Planned in the ledger: the sweeper hands it on when the broker is back.
                log.warning("guest link resend planned, not queued yet: %s", exc)
        detail = result.message
        if result.status == "queued":
            detail += (
                f" (delivery {result.delivery_id}, {used} of {self.max_resends} by link this stay)"
            )
        await self._audit(target, result.refusal or result.status, detail)
        return result

    def _answer(self, opened: Opened, result: ResendResult) -> Response:
        words = opened.words
        if result.status != "refused":
            sent = words.get(f"sent_{result.channel}", words["sent_sms"])
            where = sent.format(destination=result.destination_masked or "?")
            return self._page(200, opened, words["sent_title"], [where, words["sent_note"]])
        if result.refusal in GONE:
            return self._page(410, opened, words["gone_title"], [words["gone"]])
        if result.refusal == "still_sending":
            return self._page(409, opened, words["waiting_title"], [words["waiting"]])
        if result.refusal == "no_destination":
            return self._page(409, opened, words["nowhere_title"], [words["nowhere"]])
        return self._page(404, opened, words["invalid_title"], [words["invalid"]])

    async def _audit(self, target: str, outcome: str, detail: str) -> None:
        await self.run(
            self.console.record_audit,
            actor=ACTOR,
            action="resend",
            target=target,
            outcome=outcome,
            detail=detail,
        )

    # -- pages -------------------------------------------------------------------------------

    def _title(self, opened: Opened) -> str:
        if opened.hotel:
            return opened.words["title_at"].format(hotel=opened.hotel)
        return opened.words["title"]

    def _page(
        self,
        status: int,
        opened: Opened,
        heading: str,
        lines: list[str],
        *,
        form: bool = False,
        request_id: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response:
        return self._render(status, opened.language, opened.hotel, heading, lines,
                            form=form, request_id=request_id, headers=headers,
                            button=opened.words["button"])  # fmt: skip

    def _plain(
        self, status: int, heading: str, line: str, headers: dict[str, str] | None = None
    ) -> Response:
        """A page about a link that did not verify: no hotel, the default language."""
        language, words = words_for(self.default_locale)
        return self._render(status, language, "", words[heading], [words[line]], headers=headers)

    def _render(
        self,
        status: int,
        language: str,
        hotel: str,
        heading: str,
        lines: list[str],
        *,
        form: bool = False,
        request_id: str = "",
        button: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response:
        html = self.env.get_template("page.html").render(
            language=language, hotel=hotel, heading=heading, lines=lines, form=form,
            request_id=request_id, button=button, style=Markup(STYLE),  # noqa: S704 - a constant
        )  # fmt: skip
        return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})
