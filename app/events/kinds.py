"""Seam event types, and what each means for keycourier (DESIGN.md section 1)."""

from __future__ import annotations

from enum import StrEnum

from app.observability import metrics


class Action(StrEnum):
    DELIVER = "deliver"  # a credential is ready: send it to the guest (a card: close the flag)
    FLAG_CARD = "flag_card"  # a plastic card must be encoded: tell the front desk
    CANCEL = "cancel"  # the access method is gone: cancel what is pending
    ALERT_FRONT_DESK = "alert_front_desk"  # not ready near the start time: tell the front desk
    HOLD = "hold"  # Seam is re-programming the access method: hold what has not gone out
    TIMES_CHANGED = "times_changed"  # a grant's stay times moved: tell guests who hold a key
    RECORD = "record"  # handled by a later issue, or not ours: record it, do nothing


ACTIONS: dict[str, Action] = {
    "access_method.issued": Action.DELIVER,
    "access_method.reissued": Action.DELIVER,
    "access_method.card_encoding_required": Action.FLAG_CARD,
    "access_method.deleted": Action.CANCEL,
    "access_method.revoked": Action.HOLD,
    "access_method.delay_in_issuing": Action.ALERT_FRONT_DESK,
    "access_method.failed_to_issue": Action.ALERT_FRONT_DESK,
    "access_grant.access_times_changed": Action.TIMES_CHANGED,
}

# The event types to subscribe a Seam webhook to (and to ask events/list for).
SUBSCRIBED_EVENT_TYPES: tuple[str, ...] = tuple(ACTIONS)
# Each gets its own label in the metrics; any other type a sender makes up is "other".
metrics.know_event_types(ACTIONS)


def action_for(event_type: str) -> Action:
    return ACTIONS.get(event_type, Action.RECORD)


def is_handled(event_type: str) -> bool:
    return event_type in ACTIONS


def is_about_a_grant(action: Action) -> bool:
    """Whether events of this action name an access grant, not an access method."""
    return action is Action.TIMES_CHANGED
