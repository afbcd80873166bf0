"""Building one delivery's message from Seam's current state and the templates.

The credential is read from Seam now (the ledger keeps only its fingerprint), so a delivery
whose credential changed since it was planned is superseded, never sent stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from app.context import Context
from app.delivery.channels import channel_name
from app.delivery.credentials import credential_part, fingerprint
from app.delivery.grant_alerts import grant_alert
from app.delivery.guest_links import link_for
from app.delivery.key_errors import errors_fingerprint, unexplained_errors
from app.delivery.phones import parse_phone
from app.delivery.workspace import for_delivery, workspace_of
from app.errors import NotFound, ProviderError, Unsendable
from app.ledger.models import Delivery, DeliveryStatus
from app.messages.kinds import MessageKind
from app.messages.properties import Routing
from app.messages.rendering import Templates
from app.messages.variables import ledger_context, message_context
from app.ports import AccessGrant, AccessMethod, Email, Guest, SeamReader, Sms, Space, WhatsApp
from app.settings import PHONE_CHANNELS


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
    message: Sms | Email | WhatsApp
    guest: Guest | None
    # The front desk of the guest's hotel when properties.toml names one, for a failure's alert.
    hotel_desk: str | None = None


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
    kind = delivery.message_kind
    ctx = for_delivery(ctx, delivery)  # Seam read with its workspace's key
    if kind.reports_problem:
        siblings = ctx.ledger.siblings(delivery)
        return Composed(_front_desk_alert(ctx, delivery, siblings), None)
    if not kind.reads_seam:  # a cancelled key: gone from Seam, told from the ledger
        return _access_cancelled(ctx, delivery)
    if kind.about_grant:  # written from the grant as Seam has it now
        where = ctx.templates.routing(delivery.workspace_id, delivery.space_id_list)
        desk = _front_desk_address(where, ctx.policy.front_desk_email)
        email, about = grant_alert(ctx.seam, ctx.templates, desk, delivery)
        return Composed(email, about)
    method, grant, guest, spaces = _read_seam(ctx.seam, delivery, state)
    front_desk = not kind.is_for_guest
    space_ids = [space.space_id for space in spaces]
    # The hotel's own front desk and senders (properties.toml), where it names them.
    routing = ctx.templates.routing(method.workspace_id, space_ids)

    destination: str | None
    problem = None
    if front_desk:
        destination = _front_desk_address(routing, ctx.policy.front_desk_email)
        if kind.is_issuing_alert and method.is_issued:
            raise Unsendable(DeliveryStatus.SUPERSEDED, "the access method was issued since")
        if kind is MessageKind.FRONT_DESK_KEY_ERROR:
            errors = unexplained_errors(method)
            if not errors or errors_fingerprint(errors) != delivery.credential_fingerprint:
                raise Unsendable(DeliveryStatus.SUPERSEDED, "Seam's errors changed since")
            problem = "Seam reports: " + ", ".join(errors)
    else:
        if grant is not None and grant.user_identity_id != delivery.user_identity_id:
            raise Unsendable(DeliveryStatus.SUPERSEDED, "the access grant has another guest now")
        if not kind.carries_credential:
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
        country = ctx.templates.country(method.workspace_id, [s.space_id for s in spaces])
        guest = with_phone(guest, country)
        phone_channel = delivery.channel in PHONE_CHANNELS
        if phone_channel and guest is not None and guest.phone_problem:
            # Twilio would refuse it (21211) after the attempt: fail now, and fall back.
            raise Unsendable(DeliveryStatus.FAILED, guest.phone_problem, guest)
        destination = guest_destination(guest, delivery.channel)
        if not destination:
            missing = "a phone number" if phone_channel else "an email address"
            raise Unsendable(DeliveryStatus.SKIPPED, f"the guest no longer has {missing}")

    carries_credential = kind.carries_credential
    code_changed = carries_credential and other_credential_sent
    message = kind.template(code_changed=code_changed)
    resend_url = None
    if carries_credential and ctx.templates.guest_resend_link(method.workspace_id, space_ids):
        resend_url = link_for(ctx.policy, delivery, grant)
    context = message_context(
        method=method,
        grant=grant,
        guest=guest,
        spaces=spaces,
        audience=ctx.templates.audience(message, method.workspace_id, space_ids),
        include_credential=carries_credential,
        code_changed=code_changed,
        problem=problem,
        resend_url=resend_url,
    )
    ids: tuple[str | None, Sequence[str]] = (method.workspace_id, space_ids)
    rendered = _render(
        ctx.templates, delivery, message, destination, context, routing, ids, guest=guest
    )
    return Composed(rendered, guest, routing.front_desk_email)


def stay_fingerprint(grant: AccessGrant) -> str:
    """What a 'your stay times changed' notice is about: the stay's times, so each change is
    told once and a notice overtaken by a newer change is not sent."""
    starts = grant.starts_at.isoformat() if grant.starts_at else "-"
    ends = grant.ends_at.isoformat() if grant.ends_at else "-"
    return f"stay:{starts}/{ends}"


def _check_notice(delivery: Delivery, method: AccessMethod, grant: AccessGrant | None) -> None:
    """A notice goes out only while what it tells is still true."""
    if delivery.kind == MessageKind.CARD_READY and not method.is_issued:
        raise Unsendable(DeliveryStatus.SUPERSEDED, "the card is no longer issued")
    stale_times = grant is None or stay_fingerprint(grant) != delivery.credential_fingerprint
    if delivery.kind == MessageKind.STAY_TIMES_CHANGED and stale_times:
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


def guest_destination(guest: Guest | None, channel: str, country: str | None = None) -> str | None:
    """Where `guest` is reached on `channel`: a phone number as E.164 (a national one read in
    `country`), None when they have none or it cannot be a phone number."""
    if guest is None:
        return None
    if channel not in PHONE_CHANNELS:
        return guest.email_address
    if not guest.phone_number:
        return None
    return parse_phone(guest.phone_number, country).e164


def with_phone(guest: Guest | None, country: str | None) -> Guest | None:
    """`guest` with their phone number as E.164, or without one and the reason why: read once
    here, so the fallback and the log see the number that was (or could not be) sent to."""
    if guest is None or not guest.phone_number:
        return guest
    parsed = parse_phone(guest.phone_number, country)
    return replace(guest, phone_number=parsed.e164, phone_problem=parsed.problem)


def _front_desk_address(routing: Routing, default: str | None) -> str:
    """The hotel's front desk (properties.toml), else FRONT_DESK_EMAIL."""
    address = routing.front_desk_email or default
    if address is None:
        raise Unsendable(DeliveryStatus.SKIPPED, "FRONT_DESK_EMAIL is not set")
    return address


def _render(
    templates: Templates,
    delivery: Delivery,
    message: str,
    destination: str,
    context: dict[str, object],
    routing: Routing,
    where: tuple[str | None, Sequence[str]],
    *,
    guest: Guest | None = None,
) -> Sms | Email | WhatsApp:
    reference = f"kc-{delivery.id}"
    if delivery.channel == "whatsapp":
        content = templates.whatsapp_content(message, where[0], where[1], context)
        if content is None:
            # Without an approved template it cannot go: a key falls back to the next
            # channel (the guest is passed on for it), a notice is skipped.
            kind = delivery.message_kind
            status = DeliveryStatus.FAILED if kind.may_fall_back else DeliveryStatus.SKIPPED
            raise Unsendable(
                status,
                f"no WhatsApp content template for {message} in templates/properties.toml "
                f"([whatsapp.{message}])",
                guest,
            )
        return WhatsApp(
            destination, content.content_sid, content.variables, reference,
            sender=routing.whatsapp_sender,
        )  # fmt: skip
    if delivery.channel == "sms":
        body = templates.render_sms(message, context)
        return Sms(destination, body, reference, sender=routing.sms_sender)
    rendered = templates.render_email(message, context)
    return Email(
        destination,
        rendered.subject,
        rendered.text,
        rendered.html,
        reference,
        sender=routing.email_sender,
        sender_name=routing.email_sender_name,
    )


def _access_cancelled(ctx: Context, delivery: Delivery) -> Composed:
    """Tell a guest the key they were sent is cancelled. The access method is gone from Seam,
    so the words come from the ledger; only the guest is read, for where to send it."""
    templates = ctx.templates
    guest = None
    if delivery.user_identity_id:
        try:
            guest = ctx.seam.get_guest(delivery.user_identity_id)
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
    # The rooms are gone with the access method: the hotel's (workspace's) senders.
    workspace_id = workspace_of(ctx.ledger, delivery)
    routing = templates.routing(workspace_id, [])
    message = _render(
        templates, delivery, delivery.kind, destination, context, routing, (workspace_id, [])
    )
    return Composed(message, guest)


def _front_desk_alert(ctx: Context, delivery: Delivery, siblings: Sequence[Delivery]) -> Email:
    """Tell the front desk a guest has no key. Built from the ledger when Seam cannot answer
    (then to the front desk of the event's workspace, as its rooms are unknown)."""
    seam, templates = ctx.seam, ctx.templates
    workspace_id = workspace_of(ctx.ledger, delivery)
    space_ids: list[str] = []
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
        workspace_id, space_ids = method.workspace_id, [space.space_id for space in spaces]
        context = message_context(
            method=method,
            grant=grant,
            guest=None,
            spaces=spaces,
            audience=templates.audience(delivery.kind, workspace_id, space_ids),
            include_credential=False,
        ) | {"guest_name": context["guest_name"], "guest_first_name": context["guest_first_name"]}
    except ProviderError:
        pass  # the alert matters more than its details: send what the ledger knows
    context["problem"] = describe_failures(siblings)
    routing = templates.routing(workspace_id, space_ids)
    destination = _front_desk_address(routing, ctx.policy.front_desk_email)
    rendered = templates.render_email(delivery.kind, context)
    return Email(
        destination,
        rendered.subject,
        rendered.text,
        rendered.html,
        f"kc-{delivery.id}",
        sender=routing.email_sender,
        sender_name=routing.email_sender_name,
    )


def describe_failures(deliveries: Sequence[Delivery]) -> str:
    """One line per failed channel, for the front desk: where to and why (no credential)."""
    lines = []
    for failed in deliveries:
        if failed.status not in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED):
            continue
        channel = channel_name(failed.channel)
        code = f" (code {failed.error_code})" if failed.error_code else ""
        reason = failed.error_message or "failed"
        lines.append(f"{channel} to {failed.destination_masked or '?'}: {reason}{code}")
    return "\n".join(lines) or "no channel could reach the guest"
