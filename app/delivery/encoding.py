"""Encoding a guest's plastic key card at a front-desk encoder, through Seam.

Interface (what the ops console and the API call):

    list_encoders(seam, access_method_id) -> list[Encoder]
        The encoders the card can be encoded at (app.ports.Encoder: acs_encoder_id,
        display_name, acs_system_id, is_online, errors), online ones first, then by name.
        Raises NotFound when the access method no longer exists, ProviderError when Seam
        cannot be reached.
    encode_card(seam, ledger, access_method_id, acs_encoder_id, *, actor, wait_seconds=...)
        -> EncodeResult
        Asks Seam to encode the card (access_methods/encode) and waits, at most
        `wait_seconds`, for the action attempt. Seam's answers are results, never raised:
        status "success", "error" (error_type such as encoder_not_online,
        no_credential_on_encoder, acs_encoder_not_found, not_a_card) or "pending" (the
        encoder had not finished when the wait ended: check again with the attempt's id).
        Raises ProviderError only when Seam cannot be reached or refuses our credentials.
    encoding_status(seam, ledger, access_method_id, action_attempt_id) -> EncodeResult
        Where an attempt left pending stands now (action_attempts/get), without waiting.

EncodeResult.message is one sentence for the front desk: what happened and what to do.
All three block on Seam (encode_card for up to `wait_seconds`): call them off the event loop
(Starlette's run_in_threadpool).
A successful encode closes the access method's open front-desk flag at once (Seam's
`access_method.issued` event, when it arrives, finds it closed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from app.errors import NotFound, PermanentProviderError
from app.ledger.store import Ledger
from app.ports import ActionAttempt, Encoder, SeamReader

log = logging.getLogger(__name__)

# How long a front-desk click waits for the encoder before answering "still encoding".
DEFAULT_WAIT_SECONDS = 10.0

EncodeStatus = Literal["success", "error", "pending"]

# Our words for the front desk, by Seam's error type (and ours: not_a_card).
ADVICE = {
    "encoder_not_online": "The encoder is offline: check it is powered on and connected, "
    "or choose another encoder.",
    "no_credential_on_encoder": "No card was found on the encoder: place a blank card on it "
    "and try again.",
    "incompatible_card_format": "This card does not work with this encoder: use a card from "
    "the hotel's own stock.",
    "credential_cannot_be_reissued": "This key cannot be written to another card: ask a "
    "manager to reissue the guest's access.",
    "encoder_communication_timeout": "The encoder did not answer in time: try again.",
    "bridge_disconnected": "The access system's bridge is disconnected: check the Seam Bridge "
    "and try again.",
    "encoding_interrupted": "Encoding was interrupted (the card was moved?): try again.",
    "credential_deleted": "The guest's key was cancelled in the access system: nothing to encode.",
    "access_method_not_found": "The guest's key no longer exists in Seam: nothing to encode.",
    "acs_encoder_not_found": "That encoder no longer exists: refresh the list and choose "
    "another one.",
    "action_attempt_expired": "The encoder took too long: place the card and try again.",
    "not_a_card": "This key is not a plastic card: nothing to encode.",
}
GENERIC_ADVICE = "Encoding failed: try again, or try another encoder."


@dataclass(frozen=True)
class EncodeResult:
    status: EncodeStatus
    access_method_id: str
    acs_encoder_id: str | None
    action_attempt_id: str | None = None
    # Seam's error type (or not_a_card), and Seam's own message (phones and emails masked).
    error_type: str | None = None
    error_message: str | None = None

    @property
    def message(self) -> str:
        if self.status == "success":
            return "The card is encoded: hand it to the guest."
        if self.status == "pending":
            return "The encoder is still working: leave the card on it and check again."
        return ADVICE.get(self.error_type or "", GENERIC_ADVICE)


def list_encoders(seam: SeamReader, access_method_id: str) -> list[Encoder]:
    """The workspace's encoders (Seam's API key is the access method's workspace)."""
    seam.get_access_method(access_method_id)  # NotFound: nothing to encode
    encoders = seam.list_encoders()
    return sorted(encoders, key=lambda e: (not e.is_online, e.display_name.casefold()))


def encode_card(
    seam: SeamReader,
    ledger: Ledger,
    access_method_id: str,
    acs_encoder_id: str,
    *,
    actor: str,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> EncodeResult:
    """Encode the card's access method at the encoder; see the module's docstring."""
    context = {
        "access_method_id": access_method_id,
        "acs_encoder_id": acs_encoder_id,
        "actor": actor,
    }
    try:
        method = seam.get_access_method(access_method_id)
        if method.mode != "card":
            result = EncodeResult(
                "error", access_method_id, acs_encoder_id, error_type="not_a_card"
            )
            log.warning("encode refused: not a card", extra=context)
            return result
        attempt = seam.encode_access_method(access_method_id, acs_encoder_id, wait_seconds)
    except PermanentProviderError as exc:
        if not isinstance(exc, NotFound) and exc.status != 400:
            raise  # our API key refused, or an answer we cannot read: not the desk's problem
        result = EncodeResult(
            "error",
            access_method_id,
            acs_encoder_id,
            error_type=exc.code or "not_found",
            error_message=exc.message,
        )
        log.warning("encode refused by Seam: %s", result.error_type, extra=context)
        return result
    return _finish(ledger, access_method_id, acs_encoder_id, attempt, context)


def encoding_status(
    seam: SeamReader, ledger: Ledger, access_method_id: str, action_attempt_id: str
) -> EncodeResult:
    """The attempt's state now; a success closes the front-desk flag as encode_card does."""
    attempt = seam.get_action_attempt(action_attempt_id)
    context = {"access_method_id": access_method_id, "action_attempt_id": action_attempt_id}
    return _finish(ledger, access_method_id, None, attempt, context)


def _finish(
    ledger: Ledger,
    access_method_id: str,
    acs_encoder_id: str | None,
    attempt: ActionAttempt,
    context: dict[str, str],
) -> EncodeResult:
    result = EncodeResult(
        attempt.status,
        access_method_id,
        acs_encoder_id,
        action_attempt_id=attempt.action_attempt_id,
        error_type=attempt.error_type,
        error_message=attempt.error_message,
    )
    context = {**context, "action_attempt_id": attempt.action_attempt_id}
    if result.status == "success":
        closed = ledger.close_flags(access_method_id)
        log.info("card encoded; closed %d front-desk flag(s)", closed, extra=context)
    elif result.status == "error":
        log.warning("card not encoded: %s", result.error_type, extra=context)
    else:
        log.info("card encoding still in progress", extra=context)
    return result
