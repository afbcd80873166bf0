"""The console's actions on Seam and the guest: encode a key card at an encoder
(app/delivery/encoding.py), assign a pre-registered card by its number or by scanning it
(app/delivery/assignment.py) and resend a delivery (app/delivery/resend.py), on a card or a
delivery in the user's scope only (any other id is a 404). Each is written to the audit log and
then redirected to the page it was done from, which shows the result from that audit entry
(`?result=ID`), so a reload never repeats the action.

A card is encoded, assigned and checked, and its encoders listed, with the Seam key of the
workspace the card is in (app/delivery/workspace.py `for_flag`): a hotel group's console works
with only SEAM_WORKSPACES_FILE's keys, and each hotel's desk sees its own encoders."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.console.access import Permission
from app.console.context import Console, Endpoint
from app.context import Context
from app.delivery.assignment import (
    AssignResult,
    assign_card,
    assignment_status,
    scan_to_assign,
)
from app.delivery.encoding import EncodeResult, encode_card, encoding_status, list_encoders
from app.delivery.resend import resend as resend_delivery
from app.delivery.workspace import for_flag
from app.errors import (
    BrokerUnavailable,
    ConfigError,
    KeycourierError,
    NotFound,
    ProviderError,
)
from app.ledger.models import FlagStatus, FrontDeskFlag
from app.ports import Encoder, Queued

log = logging.getLogger(__name__)

ContextFactory = Callable[[], Context]
# Hands what an action planned to the workers (a blocking call: run in a thread).
Queue = Callable[[Sequence[Queued]], None]
ACTION_ATTEMPT = re.compile(r"action attempt ([A-Za-z0-9-]{1,100})\)")
# A pre-registered card's number as the front desk types it (spaces and dashes dropped).
CARD_NUMBER = re.compile(r"[A-Za-z0-9]{1,64}")
ASSIGNMENT = "card_assignment_required"


def card_context(context_of: ContextFactory, flag: FrontDeskFlag) -> Context:
    """What the card's actions work with: Seam read with the key of the card's workspace."""
    return for_flag(context_of(), flag)


def card_encoders(context_of: ContextFactory, flag: FrontDeskFlag) -> list[Encoder]:
    return list_encoders(card_context(context_of, flag).seam, flag.access_method_id)


async def card_flag(console: Console, request: Request) -> FrontDeskFlag:
    flag_id = console.row_id(request, "flag_id")
    flag = await console.run(console.store.get_flag, flag_id, console.scope(request))
    if flag is None:
        raise HTTPException(404, f"there is no card flag {flag_id}")
    return flag


def card(console: Console, context_of: ContextFactory) -> Endpoint:
    async def page(request: Request) -> Response:
        flag = await card_flag(console, request)
        encoders, encoders_error = [], None
        if not console.access(request).may(Permission.ENCODE):
            pass  # the page says this role may not encode: no need to ask Seam
        elif flag.status == FlagStatus.OPEN:
            try:
                encoders = await console.run(card_encoders, context_of, flag)
            except NotFound:
                encoders_error = "Seam no longer has this key: nothing to encode."
            except (ProviderError, KeycourierError) as exc:
                encoders_error = f"Seam's encoders could not be listed: {exc}"
        else:
            encoders_error = "This card is no longer waiting: it was encoded or cancelled."
        result = await console.audit_result(request, f"card {flag.id}")
        pending = None
        if result is not None and result.outcome == "pending" and result.detail:
            found = ACTION_ATTEMPT.search(result.detail)
            pending = found.group(1) if found else None
        return console.render(
            request,
            "card.html",
            {"flag": flag, "encoders": encoders, "encoders_error": encoders_error,
             "result": result, "pending_attempt": pending},
        )  # fmt: skip

    return page


def encode(console: Console, context_of: ContextFactory) -> Endpoint:
    async def post(request: Request) -> Response:
        form = await console.form(request)
        flag = await card_flag(console, request)
        encoder_id = str(form.get("acs_encoder_id", "")).strip()[:100]
        actor = console.actor(request)
        target = f"card {flag.id}"
        if not encoder_id:
            raise HTTPException(400, "choose an encoder")

        def call() -> EncodeResult:
            context = card_context(context_of, flag)
            return encode_card(
                context.seam, context.ledger, flag.access_method_id, encoder_id, actor=actor
            )

        entry = await _on_seam(console, actor, "encode", target, call)
        return console.redirect(f"/ops/cards/{flag.id}?result={entry}")

    return post


def assign(console: Console, context_of: ContextFactory) -> Endpoint:
    """Assign a pre-registered card, by the number the front desk types, to the flag's card."""

    async def post(request: Request) -> Response:
        form = await console.form(request)
        flag = await card_flag(console, request)
        typed = re.sub(r"[\s-]", "", str(form.get("card_number", "")))
        if not CARD_NUMBER.fullmatch(typed):
            raise HTTPException(400, "type the card's number (letters and digits)")
        actor = console.actor(request)
        target = f"card {flag.id}"

        def call() -> AssignResult:
            context = card_context(context_of, flag)
            return assign_card(
                context.seam, context.ledger, flag.access_method_id, typed, actor=actor
            )

        entry = await _on_seam(console, actor, "assign", target, call)
        return console.redirect(f"/ops/cards/{flag.id}?result={entry}")

    return post


def scan(console: Console, context_of: ContextFactory) -> Endpoint:
    """Scan the card placed on an encoder and assign it to the flag's guest."""

    async def post(request: Request) -> Response:
        form = await console.form(request)
        flag = await card_flag(console, request)
        encoder_id = str(form.get("acs_encoder_id", "")).strip()[:100]
        if not encoder_id:
            raise HTTPException(400, "choose an encoder")
        actor = console.actor(request)
        target = f"card {flag.id}"

        def call() -> AssignResult:
            context = card_context(context_of, flag)
            return scan_to_assign(
                context.seam, context.ledger, flag.access_method_id, encoder_id, actor=actor
            )

        entry = await _on_seam(console, actor, "scan", target, call)
        return console.redirect(f"/ops/cards/{flag.id}?result={entry}")

    return post


def check(console: Console, context_of: ContextFactory) -> Endpoint:
    """Where an encode or an assignment left pending (the card was not on the encoder in
    time) stands now."""

    async def post(request: Request) -> Response:
        form = await console.form(request)
        flag = await card_flag(console, request)
        attempt_id = str(form.get("action_attempt_id", ""))
        if not re.fullmatch(r"[A-Za-z0-9-]{1,100}", attempt_id):
            raise HTTPException(400, "no action attempt to check")
        actor = console.actor(request)
        target = f"card {flag.id}"
        assigning = flag.reason == ASSIGNMENT
        action = "assign_check" if assigning else "encode_check"

        def call() -> AssignResult | EncodeResult:
            context = card_context(context_of, flag)
            status = assignment_status if assigning else encoding_status
            return status(context.seam, context.ledger, flag.access_method_id, attempt_id)

        entry = await _on_seam(console, actor, action, target, call)
        return console.redirect(f"/ops/cards/{flag.id}?result={entry}")

    return post


async def _on_seam(
    console: Console,
    actor: str,
    action: str,
    target: str,
    call: Callable[[], EncodeResult | AssignResult],
) -> int:
    """Run a card action against Seam off the event loop and write its audit entry: the
    result, or that Seam could not be reached. Returns the entry's id."""
    entry, _ = await card_action(console, actor, action, target, call)
    return entry


async def card_action(
    console: Console,
    actor: str,
    action: str,
    target: str,
    call: Callable[[], EncodeResult | AssignResult],
) -> tuple[int, EncodeResult | AssignResult | None]:
    """_on_seam's work, with the result too (None: Seam could not be reached): the API
    answers with it."""
    try:
        result = await console.run(call)
    except ConfigError as exc:  # no key for the card's workspace: a setting to fix, not Seam
        entry = await console.audit(actor, action, target, "error", f"Seam was not asked: {exc}")
        return entry, None
    except KeycourierError as exc:
        entry = await console.audit(
            actor, action, target, "error", f"Seam could not be reached: {exc}"
        )
        return entry, None
    outcome = result.error_type if result.status == "error" else result.status
    # Where it was done: the encoder, or for an assignment `how` (the encoder, or the card by
    # its last four characters, mask_card_number: never the whole number).
    if isinstance(result, EncodeResult):
        first = f"encoder {result.acs_encoder_id}" if result.acs_encoder_id else None
    else:
        first = result.how
    where = [first] if first else []
    if result.action_attempt_id:
        where.append(f"action attempt {result.action_attempt_id}")
    detail = result.message + (f" ({', '.join(where)})" if where else "")
    return await console.audit(actor, action, target, outcome or "error", detail), result


def resend(console: Console, context_of: ContextFactory, queue: Queue) -> Endpoint:
    async def post(request: Request) -> Response:
        form = await console.form(request)
        delivery_id = console.row_id(request, "delivery_id")
        if not await console.run(console.store.sees_delivery, delivery_id, console.scope(request)):
            raise HTTPException(404, f"there is no delivery {delivery_id}")
        actor = console.actor(request)
        target = f"delivery {delivery_id}"
        reason = str(form.get("reason", "not_received"))
        channel = str(form.get("channel", "")) or None
        request_id = str(form.get("request_id", "")) or None
        try:
            result = await console.run(
                resend_delivery,
                context_of(),
                delivery_id,
                actor=actor,
                reason=reason,
                request_id=request_id,
                channel=channel,
            )
        except (ProviderError, KeycourierError) as exc:
            entry = await console.audit(actor, "resend", target, "error", str(exc))
        else:
            try:
                await console.run(queue, result.next)
            except BrokerUnavailable as exc:
                # Planned in the ledger: the sweeper hands it on when the broker is back.
                log.warning("resend planned, not queued yet: %s", exc)
            detail = result.message
            if result.delivery_id is not None:
                detail += f" (delivery {result.delivery_id}, reason {reason})"
            entry = await console.audit(
                actor, "resend", target, result.refusal or result.status, detail
            )
        return console.redirect(f"/ops/deliveries/{delivery_id}?result={entry}")

    return post
