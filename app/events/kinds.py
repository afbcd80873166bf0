"""Seam event types, and what each means for keycourier (DESIGN.md section 1).

Decided from the descriptions of Seam's OpenAPI (spec/seam/openapi.json, the `event` schema);
the README's event table says the same for operators.
"""

from __future__ import annotations

from enum import StrEnum

from app.observability import metrics


class Action(StrEnum):
    DELIVER = "deliver"  # a credential is ready: send it to the guest (a card: close the flag)
    FLAG_CARD = "flag_card"  # a plastic card must be encoded or assigned: tell the front desk
    CANCEL = "cancel"  # the access method is gone: cancel what is pending
    ALERT_FRONT_DESK = "alert_front_desk"  # not ready near the start time: tell the front desk
    HOLD = "hold"  # Seam is re-programming the access method: hold what has not gone out
    TIMES_CHANGED = "times_changed"  # a grant's stay times moved: tell guests who hold a key
    # An access method was created: nothing to send until it is issued, but a card that needs a
    # card assigned has no other event saying so: flag it to the front desk.
    CREATED = "created"
    # "One or more requested access methods could not be created for an Access Grant": tell
    # the front desk (guest, stay, what is missing) before the guest arrives; never the guest.
    GRANT_INCOMPLETE = "grant_incomplete"
    # "Access to a particular door that was requested as part of an Access Grant was lost":
    # tell the front desk; the guest's key is Seam's to re-program (its own events follow).
    DOOR_LOST = "door_lost"
    # "An Access Grant was deleted": the stay is gone; cancel its messages not sent yet and its
    # card flags. The guest is told nothing here (access_method.deleted, which Seam sends for
    # each of the grant's access methods, tells them with NOTIFY_GUEST_ON_DELETE).
    GRANT_DELETED = "grant_deleted"
    RECORD = "record"  # not ours: record it, do nothing


ACTIONS: dict[str, Action] = {
    "access_method.issued": Action.DELIVER,
    "access_method.reissued": Action.DELIVER,
    "access_method.card_encoding_required": Action.FLAG_CARD,
    "access_method.deleted": Action.CANCEL,
    "access_method.revoked": Action.HOLD,
    "access_method.delay_in_issuing": Action.ALERT_FRONT_DESK,
    "access_method.failed_to_issue": Action.ALERT_FRONT_DESK,
    "access_method.created": Action.CREATED,
    "access_grant.access_times_changed": Action.TIMES_CHANGED,
    "access_grant.could_not_create_requested_access_methods": Action.GRANT_INCOMPLETE,
    "access_grant.access_to_door_lost": Action.DOOR_LOST,
    "access_grant.deleted": Action.GRANT_DELETED,
}
# `access_grant.created` ("An Access Grant was created") is not subscribed to: a grant holds
# no credential, and each of its access methods has its own created and issued events. It is
# recorded, if it comes, and nothing is done.

# The event types to subscribe a Seam webhook to (and to ask events/list for).
SUBSCRIBED_EVENT_TYPES: tuple[str, ...] = tuple(ACTIONS)
# Each gets its own label in the metrics; any other type a sender makes up is "other".
metrics.know_event_types(ACTIONS)

_ABOUT_A_GRANT = frozenset(
    {Action.TIMES_CHANGED, Action.GRANT_INCOMPLETE, Action.DOOR_LOST, Action.GRANT_DELETED}
)


def action_for(event_type: str) -> Action:
    return ACTIONS.get(event_type, Action.RECORD)


def is_handled(event_type: str) -> bool:
    return event_type in ACTIONS


def is_about_a_grant(action: Action) -> bool:
    """Whether events of this action name an access grant, not an access method."""
    return action in _ABOUT_A_GRANT
