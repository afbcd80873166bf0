"""From an access method's current state to the messages keycourier owes (pure functions).

The planner sees Seam's current state, never the event's claims about it: events arrive at
least once and out of order, so only what Seam says now decides what a guest is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.ports import AccessGrant, AccessMethod, Guest
from app.settings import Channel

# The guest message for each mode that puts a credential in a guest's hand.
GUEST_MESSAGE = {"code": "pin_code", "mobile_key": "instant_key"}
FRONT_DESK_CARD = "front_desk_card"
# A guest was left without their credential: every channel failed.
FRONT_DESK_UNDELIVERED = "front_desk_undelivered"
# The provider reported a guest's message did not arrive; the other channel is being tried.
FRONT_DESK_DELIVERY_PROBLEM = "front_desk_delivery_problem"
# Front-desk emails that say what went wrong with a guest's messages ({{ problem }}).
PROBLEM_REPORTS = frozenset({FRONT_DESK_UNDELIVERED, FRONT_DESK_DELIVERY_PROBLEM})
# The key a guest was sent was deleted in Seam (only with NOTIFY_GUEST_ON_DELETE).
ACCESS_CANCELLED = "access_cancelled"
# Guest notices that carry no credential: the stay's times moved (NOTIFY_GUEST_ON_TIMES_CHANGED),
# a key card is ready at the front desk (NOTIFY_GUEST_CARD_READY).
STAY_TIMES_CHANGED = "stay_times_changed"
CARD_READY = "card_ready"
GUEST_NOTICES = frozenset({STAY_TIMES_CHANGED, CARD_READY})
# Seam is late issuing a guest's credential, or gave up: the front desk is told once each.
FRONT_DESK_ALERTS = {
    "access_method.delay_in_issuing": "front_desk_issue_delayed",
    "access_method.failed_to_issue": "front_desk_issue_failed",
}
# A card access method waits for a pre-registered card to be assigned to it (Seam's
# is_assignment_required): the front desk assigns one (the console's card queue).
FRONT_DESK_CARD_ASSIGN = "front_desk_card_assign"
# Seam reports errors on an access method that no event of its own announces (any error code
# but failed_to_issue, which has front_desk_issue_failed): the front desk is told once per set.
FRONT_DESK_KEY_ERROR = "front_desk_key_error"
# About an access grant rather than one access method (filed under access_method_id ""):
# Seam could not create what the grant asked for; access to one of its doors was lost.
FRONT_DESK_GRANT_INCOMPLETE = "front_desk_grant_incomplete"
FRONT_DESK_DOOR_LOST = "front_desk_door_lost"
FRONT_DESK_ABOUT_GRANT = frozenset({FRONT_DESK_GRANT_INCOMPLETE, FRONT_DESK_DOOR_LOST})
# Front-desk emails written from Seam's current state (the undelivered alert is not: it must
# go out even when Seam cannot answer).
FRONT_DESK_FROM_SEAM = frozenset(
    {FRONT_DESK_CARD, FRONT_DESK_CARD_ASSIGN, FRONT_DESK_KEY_ERROR, *FRONT_DESK_ALERTS.values()}
)

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
ERRORS_WITH_THEIR_OWN_ALERT = {
    "failed_to_issue": FRONT_DESK_ALERTS["access_method.failed_to_issue"],
}
WARNINGS_WITH_THEIR_OWN_ALERT = {
    "delay_in_issuing": FRONT_DESK_ALERTS["access_method.delay_in_issuing"],
}


@dataclass(frozen=True)
class Recipient:
    grant: AccessGrant
    guest: Guest | None

    @property
    def name(self) -> str:
        return (self.guest.full_name if self.guest else None) or self.grant.display_name


@dataclass(frozen=True)
class PlannedMessage:
    kind: str
    channel: Channel
    recipient: Recipient
    destination: str = field(repr=False)


@dataclass(frozen=True)
class Plan:
    messages: tuple[PlannedMessage, ...]
    # Why a recipient gets nothing, in words for the ledger and the logs (no PII).
    notes: tuple[str, ...] = ()


def guest_message_kind(method: AccessMethod) -> str | None:
    """The message a guest gets for this access method, or None (cards, cloud keys)."""
    return GUEST_MESSAGE.get(method.mode)


def plan_guest_messages(
    method: AccessMethod, recipients: Sequence[Recipient], channels: Sequence[Channel]
) -> Plan:
    """One message per guest per channel they can receive, for an issued credential."""
    kind = guest_message_kind(method)
    if kind is None:
        return Plan((), (f"mode {method.mode} has no guest message",))
    if not method.is_issued or method.credential is None:
        return Plan((), ("the access method is not issued yet",))
    return address(kind, recipients, channels)


def address(kind: str, recipients: Sequence[Recipient], channels: Sequence[Channel]) -> Plan:
    """One `kind` message per guest per channel they can receive. A guest on several of the
    access method's grants is one guest: they get one message, not one per grant."""
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
        destinations = {"sms": guest.phone_number, "email": guest.email_address}
        reachable = [(c, destinations[c]) for c in channels if destinations[c]]
        if not reachable:
            notes.append(
                f"user identity {guest.user_identity_id} has no "
                + " or ".join("phone number" if c == "sms" else "email address" for c in channels)
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


def unexplained_errors(method: AccessMethod) -> tuple[str, ...]:
    """The access method's error codes that no alert of their own covers."""
    return tuple(sorted(set(method.errors) - set(ERRORS_WITH_THEIR_OWN_ALERT)))


def front_desk_alerts(method: AccessMethod) -> list[tuple[str, str]]:
    """The front-desk alerts an access method's errors and warnings call for, as (kind,
    credential fingerprint): one ledger key per access method and alert, so the same alert
    planned from an event and from the access method's state is one email."""
    alerts: list[tuple[str, str]] = []
    if not method.is_issued:
        own = {**ERRORS_WITH_THEIR_OWN_ALERT, **WARNINGS_WITH_THEIR_OWN_ALERT}
        for code in (*method.errors, *method.warnings):
            if code in own and (own[code], "alert") not in alerts:
                alerts.append((own[code], "alert"))
    others = unexplained_errors(method)
    if others:
        alerts.append((FRONT_DESK_KEY_ERROR, errors_fingerprint(others)))
    return alerts


def errors_fingerprint(codes: Sequence[str]) -> str:
    """A set of error codes as a short ledger key: told once per set."""
    digest = hashlib.sha256(",".join(sorted(set(codes))).encode()).hexdigest()[:24]
    return f"errors-{digest}"
