"""Building one delivery's message from Seam's current state and the templates.

The credential is read from Seam now (the ledger keeps only its fingerprint), so a delivery
whose credential changed since it was planned is superseded, never sent stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.context import Context
from app.delivery.credentials import credential_part, fingerprint
from app.delivery.grant_alerts import GrantAlertUnsendable, grant_alert
from app.errors import NotFound, ProviderError
from app.events.planner import (
    ACCESS_CANCELLED,
    CARD_READY,
    FRONT_DESK_ABOUT_GRANT,
    FRONT_DESK_ALERTS,
    FRONT_DESK_FROM_SEAM,
    FRONT_DESK_KEY_ERROR,
    GUEST_NOTICES,
    PROBLEM_REPORTS,
    STAY_TIMES_CHANGED,
    errors_fingerprint,
    unexplained_errors,
)
from app.ledger.models import Delivery, DeliveryStatus
from app.messages.catalog import template_message
from app.messages.variables import ledger_context, message_context
from app.ports import AccessGrant, AccessMethod, Email, Guest, SeamReader, Sms, Space, Templates


class Unsendable(Exception):
    """The delivery can no longer go out as planned; `status` says how it ends."""

    def __init__(self, status: DeliveryStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class SeamState:
    """What processing an event just read from Seam, so sending at once need not read it again.

    Only ever passed to a send made in the same task, moments after the read: a send from the
    queue (a retry, the sweeper) reads Seam afresh.
    """

    method: AccessMethod
    grants: dict[str, AccessGrant]
    guests: dict[str, Guest]
    spaces: list[Space]


@dataclass(frozen=True)
class Composed:
    message: Sms | Email
    guest: Guest | None


def compose(
    ctx: Context,
    delivery: Delivery,
    state: SeamState | None = None,
    *,
    other_credential_sent: bool,
) -> Composed:
    """The message `delivery` stands for, rendered from Seam's current state.

    `other_credential_sent` (the guest already has another code of this access method: the
    message says it changed) is what the claim read (see Claimed).

    Raises Unsendable when it must not go out, ProviderError or TemplateError to retry later.
    """
    if delivery.kind in PROBLEM_REPORTS:
        siblings = ctx.ledger.siblings(delivery)
        alert = _front_desk_alert(
            ctx.seam, ctx.templates, ctx.policy.front_desk_email, delivery, siblings
        )
        return Composed(alert, None)
    if delivery.kind == ACCESS_CANCELLED:
        return _access_cancelled(ctx.seam, ctx.templates, delivery)
    if delivery.kind in FRONT_DESK_ABOUT_GRANT:
        front_desk_address = _front_desk_address(ctx.policy.front_desk_email)
        try:
            email, about = grant_alert(ctx.seam, ctx.templates, front_desk_address, delivery)
        except GrantAlertUnsendable as gone:
            raise Unsendable(gone.status, gone.reason) from gone
        return Composed(email, about)
    method, grant, guest, spaces = _read_seam(ctx.seam, delivery, state)
    front_desk = delivery.kind in FRONT_DESK_FROM_SEAM

    destination: str | None
    problem = None
    if front_desk:
        destination = _front_desk_address(ctx.policy.front_desk_email)
        if delivery.kind in FRONT_DESK_ALERTS.values() and method.is_issued:
            raise Unsendable(DeliveryStatus.SUPERSEDED, "the access method was issued since")
        if delivery.kind == FRONT_DESK_KEY_ERROR:
            errors = unexplained_errors(method)
            if not errors or errors_fingerprint(errors) != delivery.credential_fingerprint:
                raise Unsendable(DeliveryStatus.SUPERSEDED, "Seam's errors changed since")
            problem = "Seam reports: " + ", ".join(errors)
    else:
        if grant is not None and grant.user_identity_id != delivery.user_identity_id:
            raise Unsendable(DeliveryStatus.SUPERSEDED, "the access grant has another guest now")
        if delivery.kind in GUEST_NOTICES:
            _check_notice(delivery, method, grant)
        else:
            credential = method.credential
            if not method.is_issued or credential is None:
                # Seam is re-programming it (its revoke may not even be processed yet): hold
                # it for the next issued/reissued, which sends it or what replaces it.
                raise Unsendable(DeliveryStatus.HELD, "held: the access method is not issued now")
            current = fingerprint(ctx.policy.fingerprint_key(), method.access_method_id, credential)
            if current != credential_part(delivery.credential_fingerprint):
                raise Unsendable(DeliveryStatus.SUPERSEDED, "the credential changed before sending")
        destination = guest_destination(guest, delivery.channel)
        if not destination:
            missing = "a phone number" if delivery.channel == "sms" else "an email address"
            raise Unsendable(DeliveryStatus.SKIPPED, f"the guest no longer has {missing}")

    carries_credential = not front_desk and delivery.kind not in GUEST_NOTICES
    code_changed = carries_credential and other_credential_sent
    message = template_message(delivery.kind, code_changed=code_changed)
    space_ids = [space.space_id for space in spaces]
    context = message_context(
        method=method,
        grant=grant,
        guest=guest,
        spaces=spaces,
        audience=ctx.templates.audience(message, method.workspace_id, space_ids),
        include_credential=carries_credential,
        code_changed=code_changed,
        problem=problem,
    )
    return Composed(_render(ctx.templates, delivery, message, destination, context), guest)


def stay_fingerprint(grant: AccessGrant) -> str:
    """What a 'your stay times changed' notice is about: the stay's times, so each change is
    told once and a notice overtaken by a newer change is not sent."""
    starts = grant.starts_at.isoformat() if grant.starts_at else "-"
    ends = grant.ends_at.isoformat() if grant.ends_at else "-"
    return f"stay:{starts}/{ends}"


def _check_notice(delivery: Delivery, method: AccessMethod, grant: AccessGrant | None) -> None:
    """A notice goes out only while what it tells is still true."""
    if delivery.kind == CARD_READY and not method.is_issued:
        raise Unsendable(DeliveryStatus.SUPERSEDED, "the card is no longer issued")
    stale_times = grant is None or stay_fingerprint(grant) != delivery.credential_fingerprint
    if delivery.kind == STAY_TIMES_CHANGED and stale_times:
        raise Unsendable(DeliveryStatus.SUPERSEDED, "the stay times changed again since")


def _read_seam(
    seam: SeamReader, delivery: Delivery, state: SeamState | None
) -> tuple[AccessMethod, AccessGrant | None, Guest | None, list[Space]]:
    if state is not None and state.method.access_method_id == delivery.access_method_id:
        grant = state.grants.get(delivery.access_grant_id or "")
        guest = state.guests.get(delivery.user_identity_id or "")
        if grant is not None and (guest is not None or delivery.user_identity_id is None):
            return state.method, grant, guest, state.spaces
    try:
        method = seam.get_access_method(delivery.access_method_id)
        grant = (
            seam.get_access_grant(delivery.access_grant_id) if delivery.access_grant_id else None
        )
        guest = seam.get_guest(delivery.user_identity_id) if delivery.user_identity_id else None
    except NotFound as exc:
        raise Unsendable(DeliveryStatus.SUPERSEDED, f"gone from Seam: {exc.message}") from exc
    return method, grant, guest, seam.get_spaces(delivery.access_method_id)


def guest_destination(guest: Guest | None, channel: str) -> str | None:
    if guest is None:
        return None
    return guest.phone_number if channel == "sms" else guest.email_address


def _front_desk_address(address: str | None) -> str:
    if address is None:
        raise Unsendable(DeliveryStatus.SKIPPED, "FRONT_DESK_EMAIL is not set")
    return address


def _render(
    templates: Templates,
    delivery: Delivery,
    message: str,
    destination: str,
    context: dict[str, object],
) -> Sms | Email:
    reference = f"kc-{delivery.id}"
    if delivery.channel == "sms":
        return Sms(destination, templates.render_sms(message, context), reference)
    rendered = templates.render_email(message, context)
    return Email(destination, rendered.subject, rendered.text, rendered.html, reference)


def _access_cancelled(seam: SeamReader, templates: Templates, delivery: Delivery) -> Composed:
    """Tell a guest the key they were sent is cancelled. The access method is gone from Seam,
    so the words come from the ledger; only the guest is read, for where to send it."""
    guest = None
    if delivery.user_identity_id:
        try:
            guest = seam.get_guest(delivery.user_identity_id)
        except NotFound:
            guest = None
    destination = guest_destination(guest, delivery.channel)
    if not destination:
        raise Unsendable(DeliveryStatus.SKIPPED, "the guest can no longer be reached")
    context = ledger_context(
        guest_name=(guest.full_name if guest else None) or delivery.guest_name or "",
        reservation=delivery.reservation,
        access_grant_id=delivery.access_grant_id or "",
        access_method_id=delivery.access_method_id,
        audience=templates.audience(delivery.kind, None, []),
    )
    message = _render(templates, delivery, delivery.kind, destination, context)
    return Composed(message, guest)


def _front_desk_alert(
    seam: SeamReader,
    templates: Templates,
    front_desk: str | None,
    delivery: Delivery,
    siblings: Sequence[Delivery],
) -> Email:
    """Tell the front desk a guest has no key. Built from the ledger when Seam cannot answer."""
    destination = _front_desk_address(front_desk)
    context = ledger_context(
        guest_name=delivery.guest_name or "",
        reservation=delivery.reservation,
        access_grant_id=delivery.access_grant_id or "",
        access_method_id=delivery.access_method_id,
        audience=templates.audience(delivery.kind, None, []),
    )
    try:
        method = seam.get_access_method(delivery.access_method_id)
        grant = (
            seam.get_access_grant(delivery.access_grant_id) if delivery.access_grant_id else None
        )
        spaces = seam.get_spaces(delivery.access_method_id)
        context = message_context(
            method=method,
            grant=grant,
            guest=None,
            spaces=spaces,
            audience=templates.audience(
                delivery.kind, method.workspace_id, [space.space_id for space in spaces]
            ),
            include_credential=False,
        ) | {"guest_name": context["guest_name"], "guest_first_name": context["guest_first_name"]}
    except ProviderError:
        pass  # the alert matters more than its details: send what the ledger knows
    context["problem"] = describe_failures(siblings)
    rendered = templates.render_email(delivery.kind, context)
    return Email(destination, rendered.subject, rendered.text, rendered.html, f"kc-{delivery.id}")


def describe_failures(deliveries: Sequence[Delivery]) -> str:
    """One line per failed channel, for the front desk: where to and why (no credential)."""
    lines = []
    for failed in deliveries:
        if failed.status not in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED):
            continue
        channel = "SMS" if failed.channel == "sms" else "Email"
        code = f" (code {failed.error_code})" if failed.error_code else ""
        reason = failed.error_message or "failed"
        lines.append(f"{channel} to {failed.destination_masked or '?'}: {reason}{code}")
    return "\n".join(lines) or "no channel could reach the guest"
