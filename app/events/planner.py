"""From an access method's current state to the messages keycourier owes (pure functions).

The planner sees Seam's current state, never the event's claims about it: events arrive at
least once and out of order, so only what Seam says now decides what a guest is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.delivery.channels import first_channels
from app.delivery.key_errors import (
    ERRORS_WITH_THEIR_OWN_ALERT,
    errors_fingerprint,
    unexplained_errors,
)
from app.delivery.phones import parse_phone
from app.messages.kinds import MessageKind
from app.ports import AccessMethod, Recipient
from app.settings import PHONE_CHANNELS, Channel

# What an access method's errors, warnings and pending mutations mean (Seam's descriptions in
# spec/seam/openapi.json, `access_method`):
# - pending mutations "indicate operations that are in progress": provisioning_access (to new
#   devices) and revoking_access (from devices) re-program the credential, which may change:
#   a guest message is held until Seam has finished. updating_access_times changes only the
#   times, which the message reads from the grant: it does not hold. A code keycourier does not
#   know holds too (what is in progress may be the credential).
# - warning being_deleted: the credential is going away: held (its deleted event cancels it).
# - warning delay_in_issuing and error failed_to_issue have their own events and alerts; read
#   on the access method they plan the same alert (the same ledger key: one email).
# - any other error: the front desk is told (FRONT_DESK_KEY_ERROR). Other warnings
#   (updating_access_times, pulled_backup_access_code, unknown ones) change nothing here.
MUTATIONS_THAT_KEEP_THE_CREDENTIAL = frozenset({"updating_access_times"})
WARNINGS_THAT_HOLD = frozenset({"being_deleted"})
WARNINGS_WITH_THEIR_OWN_ALERT = {"delay_in_issuing": MessageKind.FRONT_DESK_ISSUE_DELAYED}


@dataclass(frozen=True)
class PlannedMessage:
    kind: MessageKind
    channel: Channel
    recipient: Recipient
    destination: str = field(repr=False)


@dataclass(frozen=True)
class Plan:
    messages: tuple[PlannedMessage, ...]
    # Why a recipient gets nothing, in words for the ledger and the logs (no PII).
    notes: tuple[str, ...] = ()


def guest_message_kind(method: AccessMethod) -> MessageKind | None:
    """The message a guest gets for this access method, or None (cards, cloud keys)."""
    return MessageKind.for_mode(method.mode)


def plan_guest_messages(
    method: AccessMethod,
    recipients: Sequence[Recipient],
    channels: Sequence[Channel],
    country: str | None = None,
) -> Plan:
    """One message per guest per channel they can receive, for an issued credential.
    `country`: the hotel's, that national phone numbers are read in (see `address`)."""
    kind = guest_message_kind(method)
    if kind is None:
        return Plan((), (f"mode {method.mode} has no guest message",))
    if not method.is_issued or method.credential is None:
        return Plan((), ("the access method is not issued yet",))
    return address(kind, recipients, channels, country)


def address(
    kind: MessageKind,
    recipients: Sequence[Recipient],
    channels: Sequence[Channel],
    country: str | None = None,
) -> Plan:
    """One `kind` message per guest per channel they can receive. A guest on several of the
    access method's grants is one guest: they get one message, not one per grant.

    A phone number is sent to as E.164, a national one read in the hotel's `country`
    (app/delivery/phones.py). One that cannot be a phone number is still planned as it is:
    sending it fails at once with the reason, and the guest's email takes over (the fallback),
    so the ledger shows both.

    `channels` is the hotel's order (app/delivery/channels.py): the first phone channel it lists
    (WhatsApp or SMS) goes, and email beside it; the others stand by as fallbacks."""
    channels = first_channels(channels)
    messages: list[PlannedMessage] = []
    notes: list[str] = []
    seen: set[str] = set()
    for recipient in recipients:
        guest = recipient.guest
        grant_id = recipient.grant.access_grant_id
        if guest is None:
            notes.append(f"access grant {grant_id} has no user identity")
            continue
        if guest.user_identity_id in seen:
            continue
        seen.add(guest.user_identity_id)
        phone = guest.phone_number
        phone_channel = next((c for c in channels if c in PHONE_CHANNELS), None)
        if phone and phone_channel is not None:
            parsed = parse_phone(phone, country)
            if parsed.problem is not None:
                notes.append(
                    f"user identity {guest.user_identity_id}: {parsed.problem}; "
                    f"its {'WhatsApp' if phone_channel == 'whatsapp' else 'SMS'} will fail and "
                    "fall back to email"
                )
            phone = parsed.e164 or phone
        destinations = {"sms": phone, "whatsapp": phone, "email": guest.email_address}
        reachable = [(c, destinations[c]) for c in channels if destinations[c]]
        if not reachable:
            notes.append(
                f"user identity {guest.user_identity_id} has no "
                + " or ".join(
                    dict.fromkeys(
                        "phone number" if c in PHONE_CHANNELS else "email address" for c in channels
                    )
                )
            )
        for channel, destination in reachable:
            assert destination is not None
            messages.append(PlannedMessage(kind, channel, recipient, destination))
    return Plan(tuple(messages), tuple(notes))


def hold_reason(method: AccessMethod) -> str | None:
    """Why a guest message of this access method must wait now (None: it may go)."""
    holding = sorted(WARNINGS_THAT_HOLD.intersection(method.warnings))
    moving = [m for m in method.pending_mutations if m not in MUTATIONS_THAT_KEEP_THE_CREDENTIAL]
    if holding:
        return "Seam is deleting the access method"
    if moving:
        return "Seam is re-programming the access method (" + ", ".join(moving) + ")"
    return None


def front_desk_alerts(method: AccessMethod) -> list[tuple[MessageKind, str]]:
    """The front-desk alerts an access method's errors and warnings call for, as (kind,
    credential fingerprint): one ledger key per access method and alert, so the same alert
    planned from an event and from the access method's state is one email."""
    alerts: list[tuple[MessageKind, str]] = []
    if not method.is_issued:
        own = {**ERRORS_WITH_THEIR_OWN_ALERT, **WARNINGS_WITH_THEIR_OWN_ALERT}
        for code in (*method.errors, *method.warnings):
            if code in own and (own[code], "alert") not in alerts:
                alerts.append((own[code], "alert"))
    others = unexplained_errors(method)
    if others:
        alerts.append((MessageKind.FRONT_DESK_KEY_ERROR, errors_fingerprint(others)))
    return alerts
