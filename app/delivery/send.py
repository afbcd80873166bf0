"""Sending one delivery: claim it, compose it, resolve any lost answer, send, record.

Every provider call is recorded as in flight before it is made, in the statement that checks
this worker's claim is still current (the fence, app/ledger/sending.py); a worker whose claim
was taken back records nothing and sends nothing (Result.LOST). A failure's follow-up (the
other channel, the front desk) is recorded as owed with the failure, then planned here.

A call that gets no answer leaves the delivery `unknown`: before any resend the provider is
asked whether the message went out (Twilio's message list), so a timeout does not become a
second SMS.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from app.context import Context
from app.delivery.compose import Composed, SeamState, compose
from app.delivery.credentials import fingerprint
from app.delivery.destinations import destination_hash
from app.delivery.fallback import after_failure
from app.delivery.retry_policy import backoff_seconds
from app.delivery.workspace import channels_of, hotel_desk_of
from app.errors import (
    KeycourierError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownOutcome,
    Unsendable,
)
from app.ledger.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus, utcnow
from app.ledger.store import AttemptEnd, Claimed, Destination, Finished, InFlight
from app.messages.whatsapp import EMPTY_VALUE
from app.observability import metrics
from app.observability.masking import mask_destination
from app.ports import (
    EmailSender,
    Guest,
    Queued,
    Sms,
    SmsSender,
    WhatsApp,
    WhatsAppSender,
    Work,
)

log = logging.getLogger(__name__)

# How soon to ask the provider about a call that got no answer.
RESOLVE_AFTER_SECONDS = 10.0


class Result(StrEnum):
    SENT = "sent"
    DRY_RUN = "dry_run"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    SKIPPED = "skipped"
    HELD = "held"
    RETRY = "retry"
    UNKNOWN = "unknown"
    NOT_PENDING = "not_pending"
    # The claim was taken back (this worker stalled past its lease): nothing recorded or sent.
    LOST = "claim_lost"


@dataclass(frozen=True)
class Outcome:
    result: Result
    # Seconds until the delivery is due again (RETRY and UNKNOWN).
    retry_in: float | None = None
    # What a failure planned (the other channel, the front desk's alert), for the queue.
    next: tuple[Queued, ...] = ()


def send_delivery(
    ctx: Context,
    delivery_id: int,
    state: SeamState | None = None,
    claimed: Claimed | None = None,
) -> Outcome:
    """Take one delivery as far as it can go now. Never sends a message twice.

    `claimed`: the claim made when it was planned, in this task; otherwise it is claimed here.
    While it works on the delivery, this process's heartbeat keeps the claim's lease renewed.
    """
    if claimed is None or claimed.delivery.id != delivery_id:
        claimed = ctx.ledger.claim_delivery(delivery_id, ctx.policy.lease)
    if claimed is None:
        return Outcome(Result.NOT_PENDING)
    with ctx.leases.holding(claimed.token):
        return _send_claimed(ctx, claimed, state)


def _send_claimed(ctx: Context, claimed: Claimed, state: SeamState | None) -> Outcome:
    ledger = ctx.ledger
    delivery = claimed.delivery
    delivery_id = delivery.id
    context = {"delivery_id": delivery_id, "channel": delivery.channel, "kind": delivery.kind}

    try:
        composed = compose(
            ctx, delivery, state, other_credential_sent=claimed.other_credential_sent
        )
    except Unsendable as unsendable:
        if not ledger.release_delivery(claimed, unsendable.status, unsendable.reason):
            return _lost(context)
        log.info("delivery not sent: %s", unsendable.reason, extra=context)
        metrics.delivery_finished(delivery.channel, unsendable.status.value)
        if unsendable.status is DeliveryStatus.FAILED:
            # Refused before any provider call (a phone number that cannot be one): the other
            # channel takes over, as after a provider's permanent refusal.
            return Outcome(Result.FAILED, next=_follow_up(ctx, delivery, unsendable.guest))
        return Outcome(Result(unsendable.status.value))
    except KeycourierError as exc:
        # Seam unreachable, a template being fixed: try again later, within the retry window.
        return _retry_later(ctx, claimed, exc, context)

    message_fp = _message_fingerprint(ctx.policy.fingerprint_key(), composed)
    if claimed.unresolved is not None:
        try:
            found = _find_lost_send(ctx, delivery, composed, claimed.unresolved)
        except ProviderError as exc:
            # Without an answer, resending could send twice: ask again later.
            log.warning("could not check a send that got no answer: %s", exc, extra=context)
            delay = backoff_seconds(1, exc.retry_after)
            if not ledger.release_delivery(
                claimed, DeliveryStatus.UNKNOWN, str(exc), next_attempt_at=_in(delay)
            ):
                return _lost(context)
            return Outcome(Result.UNKNOWN, delay)
        settled = ledger.settle_unknown(claimed, claimed.unresolved.id, found)
        if settled is Finished.LOST:
            return _lost(context)
        if found is not None:
            log.info("a send that got no answer had gone out", extra=context)
            metrics.delivery_finished(delivery.channel, "sent")
            return Outcome(Result.SENT, next=_held_reports(ctx, delivery_id, found, settled))
        if delivery.retry_deadline is not None and utcnow() > delivery.retry_deadline:
            # The provider kept not answering for the whole window: stop, fall back, report.
            if not ledger.release_delivery(
                claimed, DeliveryStatus.FAILED, "no answer from the provider in the window"
            ):
                return _lost(context)
            log.error("giving up: the provider never answered", extra=context)
            metrics.delivery_finished(delivery.channel, "failed")
            return Outcome(
                Result.FAILED,
                next=_follow_up(ctx, delivery, composed.guest, composed.hotel_desk),
            )

    provider = ctx.policy.provider(delivery.channel)
    to = composed.message.to
    destination = Destination(mask_destination(to), destination_hash(ctx.policy.search_key(), to))
    # The fence: recorded in flight only while this claim is current, renewed by the same
    # statement. A claim the sweeper took back (this worker stalled past its lease) is not
    # sent on: whoever holds it now sends it, once.
    attempt = ledger.begin_attempt(claimed, provider, message_fp, ctx.policy.lease, destination)
    if attempt is None:
        return _lost(context)
    try:
        if isinstance(composed.message, Sms):
            sent = ctx.sms.send_sms(composed.message)
        elif isinstance(composed.message, WhatsApp):
            sent = ctx.whatsapp.send_whatsapp(composed.message)
        else:
            sent = ctx.email.send_email(composed.message)
    except UnknownOutcome as exc:
        end = _end(AttemptOutcome.UNKNOWN, DeliveryStatus.UNKNOWN, exc, _in(RESOLVE_AFTER_SECONDS))
        deadline = _deadline(ctx.policy.retry_window, delivery)
        if ledger.finish_attempt(attempt, replace(end, retry_deadline=deadline)) is Finished.LOST:
            return _lost(context, in_flight=True)
        log.warning("no answer from %s; will check before resending", provider, extra=context)
        metrics.delivery_finished(delivery.channel, "unknown")
        return Outcome(Result.UNKNOWN, RESOLVE_AFTER_SECONDS)
    except TransientProviderError as exc:
        return _retry_later(ctx, claimed, exc, context, attempt, composed)
    except PermanentProviderError as exc:
        end = _end(AttemptOutcome.PERMANENT_ERROR, DeliveryStatus.FAILED, exc)
        if ledger.finish_attempt(attempt, end) is Finished.LOST:
            return _lost(context, in_flight=True)
        log.error("send failed for good: %s", exc, extra=context)
        metrics.delivery_finished(delivery.channel, "failed")
        return Outcome(
            Result.FAILED, next=_follow_up(ctx, delivery, composed.guest, composed.hotel_desk)
        )

    outcome = AttemptOutcome.DRY_RUN if sent.dry_run else AttemptOutcome.SENT
    finished = ledger.finish_attempt(
        attempt, AttemptEnd(outcome, DeliveryStatus(outcome.value), sent.provider_message_id)
    )
    if finished is Finished.LOST:
        return _lost(context, in_flight=True)
    # The one line a sent message gets (the adapters' own are debug lines). Not the provider's
    # message id: with the account's credentials it reads back the body, and the PIN in it.
    log.info(
        "delivery %s: %s to %s",
        "recorded (dry run)" if sent.dry_run else "sent",
        provider,
        destination.masked,
        extra=context,
    )
    metrics.delivery_finished(delivery.channel, outcome.value)
    return Outcome(
        Result(outcome.value),
        next=_held_reports(ctx, delivery_id, sent.provider_message_id, finished),
    )


def _lost(context: dict[str, object], *, in_flight: bool = False) -> Outcome:
    """This worker's claim was taken back: it records nothing more and sends nothing."""
    log.warning(
        "claim taken back%s; its new holder finishes the delivery",
        " while the provider call was in flight" if in_flight else "",
        extra=context,
    )
    return Outcome(Result.LOST)


def _follow_up(
    ctx: Context, delivery: Delivery, guest: Guest | None, hotel_desk: str | None = None
) -> tuple[Queued, ...]:
    """Plan what follows a failure (the other channel, its hotel's front desk alerted if it
    comes to that) and mark it done.

    It was recorded as owed with the failure itself: if this process dies before it is marked
    done, the sweeper hands it to the follow-up task (app/delivery/undelivered.py)."""
    desk = hotel_desk if hotel_desk is not None else hotel_desk_of(ctx, delivery)
    planned = tuple(
        after_failure(
            ctx.ledger,
            ctx.policy,
            delivery,
            guest,
            hotel_desk=desk,
            channels=channels_of(ctx, delivery),
        )
    )
    ctx.ledger.follow_up_done(delivery.id)
    return planned


def _held_reports(
    ctx: Context, delivery_id: int, provider_message_id: str | None, finished: Finished
) -> tuple[Queued, ...]:
    """Apply the provider reports that arrived before this message's id was recorded."""
    if finished is not Finished.REPORTS_HELD or provider_message_id is None:
        return ()
    if ctx.ledger.apply_held_reports(delivery_id, provider_message_id):
        return (Queued(Work.AFTER_UNDELIVERED, delivery_id),)
    return ()


def _retry_later(
    ctx: Context,
    claimed: Claimed,
    exc: KeycourierError,
    context: dict[str, object],
    attempt: InFlight | None = None,
    composed: Composed | None = None,
) -> Outcome:
    """Schedule the next try, or fail the delivery once the retry window is spent."""
    ledger = ctx.ledger
    delivery = claimed.delivery
    now = utcnow()
    deadline = _deadline(ctx.policy.retry_window, delivery)
    failures = 1 + sum(
        a.outcome in (AttemptOutcome.TRANSIENT_ERROR, AttemptOutcome.UNKNOWN)
        for a in delivery.attempts
    )
    delay = backoff_seconds(failures, exc.retry_after if isinstance(exc, ProviderError) else None)
    exhausted = now + timedelta(seconds=delay) > deadline
    if attempt is None:
        # Failed before any provider call (Seam, templates): recorded all the same, so the
        # timeline shows it and the backoff counts it.
        source = exc.provider if isinstance(exc, ProviderError) else "keycourier"
        attempt = ledger.begin_attempt(claimed, source, None, ctx.policy.lease)
        if attempt is None:
            return _lost(context)
    end = _end(AttemptOutcome.TRANSIENT_ERROR, DeliveryStatus.PENDING, exc, _in(delay))
    if exhausted:
        end = AttemptEnd(
            end.outcome,
            DeliveryStatus.FAILED,
            error_code=end.error_code or "retries_exhausted",
            error_message=f"gave up after {failures} tries: {end.error_message}",
        )
    if ledger.finish_attempt(attempt, replace(end, retry_deadline=deadline)) is Finished.LOST:
        return _lost(context, in_flight=composed is not None)
    if exhausted:
        log.error("retries exhausted: %s", exc, extra=context)
        metrics.delivery_finished(delivery.channel, "failed")
        guest, desk = (composed.guest, composed.hotel_desk) if composed else (None, None)
        return Outcome(Result.FAILED, next=_follow_up(ctx, delivery, guest, desk))
    log.warning("will retry in %.0f s: %s", delay, exc, extra=context)
    metrics.retry_scheduled(delivery.channel)
    return Outcome(Result.RETRY, delay)


def _end(
    outcome: AttemptOutcome,
    status: DeliveryStatus,
    exc: KeycourierError,
    next_attempt_at: datetime | None = None,
) -> AttemptEnd:
    code = exc.code if isinstance(exc, ProviderError) else type(exc).__name__
    message = exc.message if isinstance(exc, ProviderError) else str(exc)
    return AttemptEnd(
        outcome, status, error_code=code, error_message=message, next_attempt_at=next_attempt_at
    )


def _deadline(window: timedelta, delivery: Delivery) -> datetime:
    """When retrying this delivery stops: the retry window, counted from its first failure."""
    return delivery.retry_deadline or utcnow() + window


def _in(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def _message_fingerprint(key: bytes, composed: Composed) -> str:
    message = composed.message
    if isinstance(message, WhatsApp):
        filled = json.dumps(dict(message.variables), sort_keys=True, ensure_ascii=False)
        return fingerprint(key, message.to, f"{message.content_sid}\n{filled}")
    body = message.body if isinstance(message, Sms) else message.text
    return fingerprint(key, message.to, body)


def _is_the_lost_message(key: bytes, composed: Composed, lost: Attempt, body: str) -> bool:
    """Whether a message the provider holds, with this text, is the one `lost` carried."""
    message = composed.message
    if not isinstance(message, WhatsApp):
        return fingerprint(key, message.to, body) == lost.message_fingerprint
    # Twilio keeps the text it wrote from the approved template, which keycourier never sees
    # whole: it is this message when the attempt carried this very template and these values
    # (the key among them), and the text shows every value.
    values = [value for value in message.variables.values() if value != EMPTY_VALUE]
    same_attempt = _message_fingerprint(key, composed) == lost.message_fingerprint
    return same_attempt and all(value in body for value in values)


def _find_lost_send(
    ctx: Context, delivery: Delivery, composed: Composed, lost: Attempt
) -> str | None:
    """The provider's id for the message a lost call carried, or None if it never went out.

    When the provider cannot be asked (SendGrid, dry run), the message is taken as not sent:
    a second email is a lesser harm than a guest without a key.
    """
    message = composed.message
    sender: SmsSender | EmailSender | WhatsAppSender = ctx.email
    if isinstance(message, Sms):
        sender = ctx.sms
    elif isinstance(message, WhatsApp):
        sender = ctx.whatsapp
    candidates = sender.recent_messages(message.to, lost.started_at)
    if candidates is None:
        return None
    key = ctx.policy.fingerprint_key()
    matching = [
        candidate.provider_message_id
        for candidate in candidates
        if _is_the_lost_message(key, composed, lost, candidate.body)
    ]
    # A message another attempt already accounts for is not this one: a resend has the same
    # words as the message it repeats, sent moments before.
    accounted = ctx.ledger.accounted_for(matching, delivery.access_method_id, besides=lost.id)
    return next((found for found in matching if found not in accounted), None)
