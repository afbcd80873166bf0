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

from starlette.datastructures import FormData
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


# What a card action does with Seam: the card's context (its workspace's key), its flag, the
# value the form gave (an encoder, a card number, an action attempt) and who asked.
CardCall = Callable[[Context, FrontDeskFlag, str, str], EncodeResult | AssignResult]


def encode(console: Console, context_of: ContextFactory) -> Endpoint:
    """Encode the flag's card at the encoder chosen."""
    return _card_post(
        console,
        context_of,
        lambda flag: "encode",
        _encoder_id,
        lambda context, flag, encoder_id, actor: encode_card(
            context.seam, context.ledger, flag.access_method_id, encoder_id, actor=actor
        ),
    )


def assign(console: Console, context_of: ContextFactory) -> Endpoint:
    """Assign a pre-registered card, by the number the front desk types, to the flag's card."""
    return _card_post(
        console,
        context_of,
        lambda flag: "assign",
        _card_number,
        lambda context, flag, number, actor: assign_card(
            context.seam, context.ledger, flag.access_method_id, number, actor=actor
        ),
    )


def scan(console: Console, context_of: ContextFactory) -> Endpoint:
    """Scan the card placed on an encoder and assign it to the flag's guest."""
    return _card_post(
        console,
        context_of,
        lambda flag: "scan",
        _encoder_id,
        lambda context, flag, encoder_id, actor: scan_to_assign(
            context.seam, context.ledger, flag.access_method_id, encoder_id, actor=actor
        ),
    )


def check(console: Console, context_of: ContextFactory) -> Endpoint:
    """Where an encode or an assignment left pending (the card was not on the encoder in
    time) stands now."""

    def status(
        context: Context, flag: FrontDeskFlag, attempt_id: str, actor: str
    ) -> EncodeResult | AssignResult:
        ask = assignment_status if flag.reason == ASSIGNMENT else encoding_status
        return ask(context.seam, context.ledger, flag.access_method_id, attempt_id)

    return _card_post(
        console,
        context_of,
        lambda flag: "assign_check" if flag.reason == ASSIGNMENT else "encode_check",
        _attempt_id,
        status,
    )


def _card_post(
    console: Console,
    context_of: ContextFactory,
    action: Callable[[FrontDeskFlag], str],
    read: Callable[[FormData], str],
    run: CardCall,
) -> Endpoint:
    """A card action's POST: the flag in the user's scope (else 404), the form's value (else
    400), `run` against Seam with the card's workspace key off the loop, its audit entry, and
    a redirect to the card's page showing that entry."""

    async def post(request: Request) -> Response:
        form = await console.form(request)
        flag = await card_flag(console, request)
        value = read(form)
        actor = console.actor(request)

        def call() -> EncodeResult | AssignResult:
            return run(card_context(context_of, flag), flag, value, actor)

        entry, _ = await card_action(console, actor, action(flag), f"card {flag.id}", call)
        return console.redirect(f"/ops/cards/{flag.id}?result={entry}")

    return post


def _encoder_id(form: FormData) -> str:
    encoder_id = str(form.get("acs_encoder_id", "")).strip()[:100]
    if not encoder_id:
        raise HTTPException(400, "choose an encoder")
    return encoder_id


def _card_number(form: FormData) -> str:
    typed = re.sub(r"[\s-]", "", str(form.get("card_number", "")))
    if not CARD_NUMBER.fullmatch(typed):
        raise HTTPException(400, "type the card's number (letters and digits)")
    return typed


def _attempt_id(form: FormData) -> str:
    attempt_id = str(form.get("action_attempt_id", ""))
    if not re.fullmatch(r"[A-Za-z0-9-]{1,100}", attempt_id):
        raise HTTPException(400, "no action attempt to check")
    return attempt_id


async def card_action(
    console: Console,
    actor: str,
    action: str,
    target: str,
    call: Callable[[], EncodeResult | AssignResult],
) -> tuple[int, EncodeResult | AssignResult | None]:
    """Run a card action against Seam off the event loop and write its audit entry: the
    result, or why Seam was not asked or could not be reached. Returns the entry's id and the
    result (None when there is none: the API answers with it)."""
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
