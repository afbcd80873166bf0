"""The console's pages that only read: deliveries (search, filters), one delivery's timeline,
the card queue, alerts and the audit log. Each reads the ledger within the user's scope; a
search and a delivery page are written to the audit log (the search's phone number or email
only masked, with a prefix of its keyed hash)."""

from __future__ import annotations

import re
import uuid

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.console.context import Console, Endpoint
from app.console.hotels import Hotels
from app.console.timeline import error_text, timeline
from app.delivery.destinations import normalise, search_hashes, search_key
from app.delivery.resend import REASONS
from app.ledger.console import DeliveryQuery
from app.ledger.models import AuditEntry, Delivery, DeliveryStatus
from app.observability.masking import mask_destination, mask_text

STATUSES = tuple(status.value for status in DeliveryStatus)
CHANNELS = ("sms", "whatsapp", "email")
PAGE_SIZE = 50
# Past this, a page number is refused (400) rather than turned into an offset no database takes.
MAX_PAGE = 1_000_000
NEW_DELIVERY = re.compile(r"\(delivery (\d+),")
# A search's audit entry names at most this many of the deliveries it found.
AUDIT_IDS = 20


def delivery_query(console: Console, request: Request, hotels: Hotels) -> DeliveryQuery:
    """The search and filters of /ops/ and /api/deliveries, from the query string, within
    the user's (or token's) scope.

    Text that reads as a phone number (with its country code, or national in a hotel's
    country) or an email address is also matched against each delivery's keyed destination
    hash (app/delivery/destinations.py)."""
    params = request.query_params
    text = params.get("q", "").strip()[:200] or None
    status = params.get("status") or None
    channel = params.get("channel") or None
    hotel = params.get("hotel") or None
    if status is not None and status not in STATUSES:
        raise HTTPException(400, f"unknown status {status!r}")
    if channel is not None and channel not in CHANNELS:
        raise HTTPException(400, f"unknown channel {channel!r}")
    places = None
    if hotel is not None:
        places = hotels.places(hotel)
        if places is None:
            raise HTTPException(400, f"properties.toml names no hotel {hotel[:100]!r}")
    try:
        page = max(1, int(params.get("page", "1")))
        limit = min(200, max(1, int(params.get("limit", str(PAGE_SIZE)))))
    except ValueError:
        raise HTTPException(400, "page and limit are numbers") from None
    if page > MAX_PAGE:
        raise HTTPException(400, f"page is at most {MAX_PAGE}")
    digests: tuple[str, ...] = ()
    if text is not None:
        digests = search_hashes(search_key(console.settings), text, console.countries())
    return DeliveryQuery(
        scope=console.scope(request),
        text=text,
        destination_hashes=digests,
        status=status,
        channel=channel,
        hotel=places,
        hotel_name=hotel,
        limit=limit,
        offset=(page - 1) * limit,
    )


async def audit_search(
    console: Console, request: Request, query: DeliveryQuery, found: list[Delivery]
) -> None:
    """Write a search for a guest to the audit log: who, what they typed (a phone number or
    email masked, with its keyed hash's prefix; anything else with addresses masked), the
    filters, and which deliveries it showed. Browsing without a search names no one: not
    written."""
    if query.text is None:
        return
    if query.destination_hashes:
        typed = repr(mask_destination(normalise(query.text) or query.text))
        typed += f" (hash {', '.join(digest[:12] for digest in query.destination_hashes)})"
    else:
        typed = repr(mask_text(query.text))
    filters = [f"{name} {value}" for name, value in (("status", query.status),
               ("channel", query.channel), ("hotel", query.hotel_name)) if value]  # fmt: skip
    ids = ", ".join(str(d.id) for d in found[:AUDIT_IDS]) + (
        ", ..." if len(found) > AUDIT_IDS else ""
    )
    detail = typed + (f", {', '.join(filters)}" if filters else "")
    detail += f": {len(found)} found" + (f" (deliveries {ids})" if found else "")
    await console.audit(console.actor(request), "search", None, "ok", detail)


def deliveries(console: Console) -> Endpoint:
    async def page(request: Request) -> Response:
        hotels = await console.run(console.hotels.current)
        query = delivery_query(console, request, hotels)
        found = await console.run(console.store.find_deliveries, query)
        await audit_search(console, request, query, found)
        return console.render(
            request,
            "deliveries.html",
            {
                "deliveries": found,
                "hotel_of": {d.id: hotels.name_of(d) for d in found},
                "q": query.text or "",
                "status": query.status or "",
                "channel": query.channel or "",
                "hotel": query.hotel_name or "",
                "hotels": hotels.names_for(query.scope),
                "statuses": STATUSES,
                "channels": CHANNELS,
                "page": query.offset // query.limit + 1,
                "more": len(found) == query.limit,
            },
        )

    return page


def delivery(console: Console) -> Endpoint:
    async def page(request: Request) -> Response:
        delivery_id = console.row_id(request, "delivery_id")
        scope = console.scope(request)
        found = await console.run(console.store.delivery_timeline, delivery_id, scope)
        await console.audit(console.actor(request), "view", f"delivery {delivery_id}",
                            "ok" if found else "not_found")  # fmt: skip
        if found is None:
            raise HTTPException(404, f"there is no delivery {delivery_id}")
        row, reports = found
        others = await console.run(console.store.same_key, row, scope)
        hotels = await console.run(console.hotels.current)
        result = None
        if "result" in request.query_params:
            result = await console.audit_result(request, f"delivery {row.id}")
        return console.render(
            request,
            "delivery.html",
            {
                "d": row,
                "hotel": hotels.name_of(row),
                "error": error_text(row),
                "timeline": timeline(row, reports),
                "others": others,
                "result": result,
                "new_delivery": _new_delivery(result),
                "reasons": REASONS,
                # One id per form shown: a double submit, or a reload, sends once.
                "request_id": uuid.uuid4().hex,
            },
        )

    return page


def cards(console: Console) -> Endpoint:
    async def page(request: Request) -> Response:
        flags = await console.run(console.store.open_flag_list, console.scope(request))
        return console.render(request, "cards.html", {"flags": flags})

    return page


def alerts(console: Console) -> Endpoint:
    async def page(request: Request) -> Response:
        scope = console.scope(request)
        rows = await console.run(console.store.alert_deliveries, scope)
        flags = await console.run(console.store.open_flag_list, scope)
        hotels = await console.run(console.hotels.current)
        # Events set aside may be any hotel's (they are not filed under one): only someone who
        # sees every hotel is shown them.
        poisoned = await console.run(console.store.poisoned_events) if scope.everywhere else []
        return console.render(
            request,
            "alerts.html",
            {
                "deliveries": rows,
                "errors": {d.id: error_text(d) for d in rows},
                "flags": flags,
                "poisoned": poisoned,
                "hotel_of": {d.id: hotels.name_of(d) for d in rows},
            },
        )

    return page


def audit(console: Console) -> Endpoint:
    async def page(request: Request) -> Response:
        try:
            number = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            raise HTTPException(400, "page is a number") from None
        if number > MAX_PAGE:
            raise HTTPException(400, f"page is at most {MAX_PAGE}")
        offset = (number - 1) * PAGE_SIZE
        entries = await console.run(console.store.audit_entries, PAGE_SIZE, offset)
        return console.render(
            request,
            "audit.html",
            {"entries": entries, "page": number, "more": len(entries) == PAGE_SIZE},
        )

    return page


def _new_delivery(entry: AuditEntry | None) -> int | None:
    """The delivery a resend planned, named in its audit entry's detail."""
    if entry is None or entry.action != "resend" or not entry.detail:
        return None
    found = NEW_DELIVERY.search(entry.detail)
    return int(found.group(1)) if found else None
