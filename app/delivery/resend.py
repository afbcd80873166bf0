"""Sending a guest's key message again, because the front desk asked.

Interface (what the ops console and the API call):

    resend(ctx, delivery_id, *, actor, reason="not_received",
           request_id=None, channel=None) -> ResendResult
        Reads the access method, its grant and the guest from Seam NOW (never the ledger's
        old message) and plans one new delivery of the CURRENT credential to the guest's
        current phone or email. `ResendResult.next` is that delivery for the normal send path
        (the caller queues it): rendering, attempts, retries, fallback and metrics all
        apply. `channel` defaults to the original delivery's. `reason` is one of REASONS,
        or GUEST_LINK_REASON when the guest asked through their own link (app/guest/)
        (logged; never free text, which could carry a guest's details). `request_id` (letters,
        digits, dashes, at most 40) makes the request idempotent: the same id twice plans and
        sends one message; without one, each call is a new resend. Give the console form's
        one-time id so a double-clicked button sends once.
        A refusal is a result (status "refused", `refusal` a code of REFUSALS, `message` words
        for the desk), never an exception; Seam or the ledger unreachable raise
        ProviderError / LedgerUnavailable. A broker that is down when the caller queues it
        does not lose the resend: it is planned, and the sweeper hands it on.
        It blocks on Seam (three reads) and the ledger: call it off the event loop
        (Starlette's run_in_threadpool). app.delivery.credentials.is_resend(fingerprint) tells a
        timeline which deliveries are resends.

Why a resend is not swallowed by the protections against double sends: its delivery's
`credential_fingerprint` is the credential's, marked with the request (app/delivery/credentials.py),
so the unique key gives it its own row while every "same credential?" comparison ignores the
mark; a lost answer is settled only by a provider message no other attempt accounts for
(app/delivery/send.py). Its own task retried or duplicated still sends once: the claim decides.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, replace
from typing import Literal

from app.context import Context
from app.delivery.compose import guest_destination
from app.delivery.credentials import credential_part, fingerprint, resend_fingerprint
from app.delivery.planned import About, Destination, new_delivery, reservation_of
from app.delivery.workspace import for_delivery
from app.errors import NotFound
from app.messages.kinds import MessageKind
from app.ports import Queued, sends

log = logging.getLogger(__name__)

# Why the desk asks (shown as choices; logged as the key).
REASONS = {
    "not_received": "The guest says the message did not arrive",
    "lost_message": "The guest deleted or lost the message",
    "contact_corrected": "The guest's phone number or email address was corrected",
    "other": "Another reason",
}
# Not a choice at the desk: the guest asked through their own link (app/guest/).
GUEST_LINK_REASON = "guest_link"
# Why a resend is refused, in words for the desk.
REFUSALS = {
    "unknown_reason": "Choose why the message is sent again.",
    "bad_request_id": "The request id must be letters, digits and dashes (at most 40).",
    "bad_channel": "A message goes by SMS or email.",
    "not_found": "There is no such delivery.",
    "not_a_guest_key": "Only a guest's PIN code or mobile key message can be sent again "
    "(not front-desk messages or notices).",
    "no_guest": "This delivery has no guest to send to.",
    "access_method_deleted": "The guest's key no longer exists in Seam: there is nothing to send.",
    "not_issued": "Seam has not issued the guest's key (any more): there is nothing to send yet.",
    "access_grant_deleted": "The guest's access grant no longer exists in Seam.",
    "guest_deleted": "The guest no longer exists in Seam.",
    "no_destination": "The guest has no phone number or email address for this channel in Seam.",
    "still_sending": "A message of this key to this guest on this channel is still on its way: "
    "wait for it to finish before sending again.",
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,40}$")

ResendStatus = Literal["queued", "already_requested", "refused"]


@dataclass(frozen=True)
class ResendResult:
    status: ResendStatus
    original_delivery_id: int
    # The new delivery (queued), or the one this request planned before (already_requested).
    delivery_id: int | None = None
    channel: str | None = None
    # The guest gets another credential than the original delivery carried (it changed).
    credential_changed: bool = False
    refusal: str | None = None
    # Masked: where the message goes.
    destination_masked: str | None = None

    @property
    def next(self) -> list[Queued]:
        """The new delivery, for the queue: only when this request planned it."""
        return sends([self.delivery_id]) if self.status == "queued" and self.delivery_id else []

    @property
    def message(self) -> str:
        if self.status == "refused":
            return REFUSALS.get(self.refusal or "", "The message cannot be sent again.")
        if self.status == "already_requested":
            return "This resend was already asked for: it is sent once."
        sending = f"Sending again to {self.destination_masked}."
        if self.credential_changed:
            return f"{sending} The key changed since: the guest gets the current one."
        return sending


def resend(
    ctx: Context,
    delivery_id: int,
    *,
    actor: str,
    reason: str = "not_received",
    request_id: str | None = None,
    channel: str | None = None,
) -> ResendResult:
    """Send the delivery's guest their current credential again; see the module's docstring."""
    context: dict[str, object] = {"delivery_id": delivery_id, "actor": actor, "reason": reason}

    def refused(code: str) -> ResendResult:
        log.warning("resend refused: %s", code, extra=context)
        return ResendResult("refused", delivery_id, refusal=code)

    if reason not in REASONS and reason != GUEST_LINK_REASON:
        context["reason"] = "unknown"
        return refused("unknown_reason")
    if request_id is not None and not _REQUEST_ID.fullmatch(request_id):
        return refused("bad_request_id")
    if channel not in (None, "sms", "email", "whatsapp"):
        return refused("bad_channel")
    original = ctx.ledger.get_delivery(delivery_id)
    if original is None:
        return refused("not_found")
    if not original.message_kind.carries_credential:
        return refused("not_a_guest_key")
    if original.user_identity_id is None:
        return refused("no_guest")
    channel = channel or original.channel
    context |= {"channel": channel, "kind": original.kind}

    seam = for_delivery(ctx, original).seam
    try:
        method = seam.get_access_method(original.access_method_id)
    except NotFound:
        return refused("access_method_deleted")
    credential = method.credential
    kind = MessageKind.for_mode(method.mode)
    if kind != original.kind or not method.is_issued or credential is None:
        return refused("not_issued")
    try:
        grant = (
            seam.get_access_grant(original.access_grant_id) if original.access_grant_id else None
        )
    except NotFound:
        return refused("access_grant_deleted")
    try:
        guest = seam.get_guest(original.user_identity_id)
    except NotFound:
        return refused("guest_deleted")
    country = ctx.templates.country(method.workspace_id, grant.space_ids if grant else ())
    destination = guest_destination(guest, channel, country)
    if not destination:
        return refused("no_destination")

    current = fingerprint(ctx.policy.fingerprint_key(), method.access_method_id, credential)
    changed = current != credential_part(original.credential_fingerprint)
    ledger = ctx.ledger
    request_id = request_id or uuid.uuid4().hex
    new = new_delivery(
        original.message_kind,
        access_method_id=original.access_method_id,
        channel=channel,
        credential_fingerprint=resend_fingerprint(current, request_id),
        event_id=original.event_id,
        about=replace(
            About.like(original),
            guest_name=guest.full_name or original.guest_name,
            reservation=reservation_of(grant) if grant else original.reservation,
        ),
        destination=Destination.of(destination, ctx.policy.search_key()),
    )
    planned = ledger.plan_resend(new, request_id)
    if planned is None:
        return refused("still_sending")
    new_id, created = planned
    result = ResendResult(
        "queued" if created else "already_requested",
        delivery_id,
        delivery_id=new_id,
        channel=channel,
        credential_changed=changed,
        destination_masked=new.destination_masked,
    )
    if not created:
        log.info("resend already requested as delivery %d", new_id, extra=context)
        return result
    log.info(
        "resend requested: delivery %d%s",
        new_id,
        " (the credential changed since)" if changed else "",
        extra=context,
    )
    return result
