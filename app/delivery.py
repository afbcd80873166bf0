"""Sending one delivery: claim it, re-read the credential, render, send, record the attempt.

The credential is fetched from Seam at send time (the ledger keeps only its fingerprint), so a
delivery whose credential changed since it was planned is superseded, never sent stale.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from app.container import Services
from app.credentials import fingerprint
from app.errors import KeycourierError, NotFound, ProviderError, TransientProviderError
from app.ledger.models import AttemptOutcome, Delivery, DeliveryStatus, utcnow
from app.ledger.store import AttemptResult
from app.messages import message_context
from app.planner import FRONT_DESK_CARD
from app.ports import Email, Sent, Sms

log = logging.getLogger(__name__)


class Result(StrEnum):
    SENT = "sent"
    DRY_RUN = "dry_run"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    SKIPPED = "skipped"
    NOT_PENDING = "not_pending"


class _Unsendable(Exception):
    """The delivery can no longer go out as planned; `status` says how it ends."""

    def __init__(self, status: DeliveryStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def send_delivery(services: Services, delivery_id: int) -> Result:
    """Send a pending delivery once. Transient failures are recorded and re-raised to retry."""
    ledger = services.ledger
    delivery = ledger.claim_delivery(delivery_id)
    if delivery is None:
        return Result.NOT_PENDING
    context = {"delivery_id": delivery_id, "channel": delivery.channel, "kind": delivery.kind}

    try:
        message = _compose(services, delivery)
    except _Unsendable as unsendable:
        ledger.release_delivery(delivery_id, unsendable.status, unsendable.reason)
        log.info("delivery not sent: %s", unsendable.reason, extra=context)
        return Result(unsendable.status.value)
    except Exception as exc:
        # Seam unreachable, a template being fixed, the ledger blinking: try again later.
        ledger.release_delivery(delivery_id, DeliveryStatus.PENDING, _describe(exc))
        raise

    started = utcnow()
    try:
        sent = _send(services, message)
    except ProviderError as exc:
        transient = isinstance(exc, TransientProviderError)
        ledger.record_attempt(
            delivery_id,
            AttemptResult(
                started_at=started,
                outcome=(
                    AttemptOutcome.TRANSIENT_ERROR if transient else AttemptOutcome.PERMANENT_ERROR
                ),
                provider=exc.provider,
                error_code=exc.code,
                error_message=exc.message,
            ),
        )
        if transient:
            log.warning("send failed, will retry: %s", exc, extra=context)
            raise
        log.error("send failed for good: %s", exc, extra=context)
        return Result.FAILED

    ledger.record_attempt(
        delivery_id,
        AttemptResult(
            started_at=started,
            outcome=AttemptOutcome.DRY_RUN if sent.dry_run else AttemptOutcome.SENT,
            provider=sent.provider,
            provider_message_id=sent.provider_message_id,
        ),
    )
    log.info("delivery %s", "recorded (dry run)" if sent.dry_run else "sent", extra=context)
    return Result.DRY_RUN if sent.dry_run else Result.SENT


def _send(services: Services, message: Sms | Email) -> Sent:
    if isinstance(message, Sms):
        return services.sms.send_sms(message)
    return services.email.send_email(message)


def _describe(exc: Exception) -> str:
    # Our exceptions carry no credentials; anything else is named by its type only.
    return str(exc) if isinstance(exc, KeycourierError) else type(exc).__name__


def _compose(services: Services, delivery: Delivery) -> Sms | Email:
    seam, settings = services.seam, services.settings
    try:
        method = seam.get_access_method(delivery.access_method_id)
        grant = (
            seam.get_access_grant(delivery.access_grant_id) if delivery.access_grant_id else None
        )
        guest = seam.get_guest(delivery.user_identity_id) if delivery.user_identity_id else None
    except NotFound as exc:
        raise _Unsendable(DeliveryStatus.SUPERSEDED, f"gone from Seam: {exc.message}") from exc
    spaces = seam.get_spaces(delivery.access_method_id)
    reference = f"kc-{delivery.id}"

    front_desk = delivery.kind == FRONT_DESK_CARD
    destination: str | None
    if front_desk:
        destination = settings.front_desk_email
        if destination is None:
            raise _Unsendable(DeliveryStatus.SKIPPED, "FRONT_DESK_EMAIL is not set")
    else:
        credential = method.credential
        if not method.is_issued or credential is None:
            raise _Unsendable(DeliveryStatus.SUPERSEDED, "the access method is no longer issued")
        current = fingerprint(settings.fingerprint_key(), method.access_method_id, credential)
        if current != delivery.credential_fingerprint:
            raise _Unsendable(DeliveryStatus.SUPERSEDED, "the credential changed before sending")
        sms = delivery.channel == "sms"
        destination = (guest.phone_number if sms else guest.email_address) if guest else None
        if not destination:
            missing = "a phone number" if sms else "an email address"
            raise _Unsendable(DeliveryStatus.SKIPPED, f"the guest no longer has {missing}")

    context = message_context(
        method=method,
        grant=grant,
        guest=guest,
        spaces=spaces,
        timezone=settings.timezone,
        include_credential=not front_desk,
        code_changed=not front_desk and services.ledger.guest_had_other_credential(delivery),
    )
    if delivery.channel == "sms":
        return Sms(destination, services.renderer.render_sms(delivery.kind, context), reference)
    rendered = services.renderer.render_email(delivery.kind, context)
    return Email(destination, rendered.subject, rendered.text, rendered.html, reference)
