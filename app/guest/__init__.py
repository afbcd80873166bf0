"""The guest's own pages: the "resend my key" link a key message carries.

A hotel turns it on in templates/properties.toml (`guest_resend_link = true`); its guests' PIN
code and mobile key messages then carry `{{ resend_url }}`, PUBLIC_BASE_URL/k/<token>, a short
signed token that expires with the stay (app/delivery/guest_links.py). The page is public (no
console session: the token is the capability), server-rendered, without JavaScript:

    /k/{token}   GET    the hotel's name and language, where the key goes (masked), a button
    /k/{token}   POST   send the key again: re-read from Seam, to the destination on file, on the
                        same channel, at most GUEST_LINK_MAX_RESENDS times per stay (counted in
                        the ledger), audited as "guest link" (pages.py)

Every request takes a slot of its client address's GUEST_LINK_ADDRESS_LIMIT (the ledger's
lockout, as the console's sign-in). Nothing here blocks the event loop: the ledger and Seam are
called in a thread.

May import: delivery (the token, resend), ledger, messages (properties.toml, through the
templates), console.throttle (the client's address as the lockout counts it), context, and the
foundations (settings, errors, ports).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute, Route

from app.context import Context
from app.guest.pages import GuestLinks
from app.ledger.store import Ledger
from app.messages.rendering import Templates
from app.ports import Queued
from app.settings import Settings

PATH = "/k/{token}"


def guest_routes(
    settings: Settings,
    ledger: Ledger,
    context: Callable[[], Context],
    queue: Callable[[Sequence[Queued]], None],
    templates: Templates,
) -> list[BaseRoute]:
    """The link's page. `context` builds (once) what a resend needs; `queue` hands its new
    delivery to the workers (a blocking call: run in a thread)."""
    links = GuestLinks(settings, ledger, context, queue, templates)
    return [
        Route(PATH, links.show, methods=["GET"]),
        Route(PATH, links.ask, methods=["POST"]),
    ]
