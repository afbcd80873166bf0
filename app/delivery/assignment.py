"""Assigning a pre-registered key card to a guest's card access method, through Seam.

Some access systems use cards registered in advance: Seam's card access method then says
`is_assignment_required` (and `is_ready_for_assignment` once it can take one) and is issued
when a card is assigned to it. The front desk does it from the console's card queue, one of
two ways (both Seam action attempts, handled as card encoding is, app/delivery/encoding.py):

    assign_card(seam, ledger, access_method_id, card_number, *, actor, wait_seconds=...)
        -> AssignResult
        The card by its number (access_methods/assign_card).
    scan_to_assign(seam, ledger, access_method_id, acs_encoder_id, *, actor, wait_seconds=...)
        -> AssignResult
        The card placed on an encoder, scanned and assigned to the guest's user identity
        (acs/encoders/scan_to_assign_credential; the guest is the access method's grant's).
    assignment_status(seam, ledger, access_method_id, action_attempt_id) -> AssignResult
        Where an attempt left pending stands now, without waiting.

Seam's answers are results, never raised: "success", "error" (error_type such as
credential_not_found, no_credential_on_encoder, action_attempt_expired, or ours: not_a_card,
no_assignment_needed, no_guest) or "pending". ProviderError only when Seam cannot be reached
or refuses our credentials. A success re-reads the access method and closes its front-desk
flag once Seam has issued it (or no longer asks for a card); Seam's `access_method.issued`
closes it otherwise. A card number is never logged or written to the audit log in full.
All block on Seam: call them off the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from app.delivery.encoding import DEFAULT_WAIT_SECONDS
from app.errors import NotFound, PermanentProviderError
from app.ledger.store import Ledger
from app.ports import ActionAttempt, SeamReader

log = logging.getLogger(__name__)

AssignStatus = Literal["success", "error", "pending"]

ADVICE = {
    "credential_not_found": "No pre-registered card has this number: check the number on the "
    "card and try again.",
    "no_credential_on_encoder": "No card was found on the encoder: place the card on it and "
    "try again.",
    "action_attempt_expired": "The access system took too long: try again.",
    "not_a_card": "This key is not a plastic card: nothing to assign.",
    "no_assignment_needed": "This card does not need a card assigned (it may be issued "
    "already, or be encoded instead).",
    "no_guest": "Seam names no guest for this card: check the access grant in Seam.",
    "access_method_not_found": "The guest's key no longer exists in Seam: nothing to assign.",
    "acs_encoder_not_found": "That encoder no longer exists: refresh the list and choose "
    "another one.",
}
GENERIC_ADVICE = "The card could not be assigned: try again, or assign it by its number."


@dataclass(frozen=True)
class AssignResult:
    status: AssignStatus
    access_method_id: str
    # The encoder scanned at, or the card's number masked to its last four characters.
    how: str | None = None
    action_attempt_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None

    @property
    def message(self) -> str:
        if self.status == "success":
            return "The card is assigned: hand it to the guest."
        if self.status == "pending":
            return "The access system is still working: check again in a moment."
        return ADVICE.get(self.error_type or "", GENERIC_ADVICE)


def mask_card_number(card_number: str) -> str:
    """A card number as the console and the logs may show it: its last four characters."""
    return f"card …{card_number[-4:]}" if len(card_number) > 4 else "card …"


def assign_card(
    seam: SeamReader,
    ledger: Ledger,
    access_method_id: str,
    card_number: str,
    *,
    actor: str,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> AssignResult:
    """Assign the pre-registered card with this number; see the module's docstring."""
    how = mask_card_number(card_number)
    return _attempt(
        seam,
        ledger,
        access_method_id,
        how,
        {"access_method_id": access_method_id, "actor": actor},
        lambda: seam.assign_card(access_method_id, card_number, wait_seconds),
    )


def scan_to_assign(
    seam: SeamReader,
    ledger: Ledger,
    access_method_id: str,
    acs_encoder_id: str,
    *,
    actor: str,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> AssignResult:
    """Scan the card on the encoder and assign it to the card's guest."""
    context = {"access_method_id": access_method_id, "acs_encoder_id": acs_encoder_id,
               "actor": actor}  # fmt: skip

    def scan() -> ActionAttempt | str:
        related = seam.get_related(access_method_id)
        guests = sorted({g.user_identity_id for g in related.grants.values() if g.user_identity_id})
        if not guests:
            return "no_guest"
        return seam.scan_to_assign(acs_encoder_id, guests[0], wait_seconds)

    return _attempt(seam, ledger, access_method_id, f"encoder {acs_encoder_id}", context, scan)


def assignment_status(
    seam: SeamReader, ledger: Ledger, access_method_id: str, action_attempt_id: str
) -> AssignResult:
    """The attempt's state now; a success closes the front-desk flag as the others do."""
    attempt = seam.get_action_attempt(action_attempt_id)
    context = {"access_method_id": access_method_id, "action_attempt_id": action_attempt_id}
    return _finish(seam, ledger, access_method_id, None, attempt, context)


def _attempt(
    seam: SeamReader,
    ledger: Ledger,
    access_method_id: str,
    how: str,
    context: dict[str, str],
    request: Callable[[], ActionAttempt | str],
) -> AssignResult:
    try:
        method = seam.get_access_method(access_method_id)
        refusal = None
        if method.mode != "card":
            refusal = "not_a_card"
        elif method.is_issued or not method.is_assignment_required:
            refusal = "no_assignment_needed"
        answer = refusal or request()
    except PermanentProviderError as exc:
        if not isinstance(exc, NotFound) and exc.status != 400:
            raise  # our API key refused, or an answer we cannot read: not the desk's problem
        answer = exc.code or "not_found"
        log.warning("assignment refused by Seam: %s", answer, extra=context)
        return AssignResult("error", access_method_id, how, error_type=answer,
                            error_message=exc.message)  # fmt: skip
    if isinstance(answer, str):
        log.warning("assignment refused: %s", answer, extra=context)
        return AssignResult("error", access_method_id, how, error_type=answer)
    return _finish(seam, ledger, access_method_id, how, answer, context)


def _finish(
    seam: SeamReader,
    ledger: Ledger,
    access_method_id: str,
    how: str | None,
    attempt: ActionAttempt,
    context: dict[str, str],
) -> AssignResult:
    result = AssignResult(
        attempt.status,
        access_method_id,
        how,
        action_attempt_id=attempt.action_attempt_id,
        error_type=attempt.error_type,
        error_message=attempt.error_message,
    )
    context = {**context, "action_attempt_id": attempt.action_attempt_id}
    if result.status == "success":
        try:
            method = seam.get_access_method(access_method_id)
            done = method.is_issued or not method.is_assignment_required
        except NotFound:
            done = True
        closed = ledger.close_flags(access_method_id) if done else 0
        log.info("card assigned; closed %d front-desk flag(s)", closed, extra=context)
    elif result.status == "error":
        log.warning("card not assigned: %s", result.error_type, extra=context)
    else:
        log.info("card assignment still in progress", extra=context)
    return result
