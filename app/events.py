"""Seam event types, and what each means for keycourier (DESIGN.md section 1)."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    DELIVER = "deliver"  # a credential is ready: send it to the guest (a card: close the flag)
    FLAG_CARD = "flag_card"  # a plastic card must be encoded: tell the front desk
    CANCEL = "cancel"  # the access method is gone: cancel what is pending
    ALERT_FRONT_DESK = "alert_front_desk"  # not ready near the start time: tell the front desk
    RECORD = "record"  # handled by a later issue, or not ours: record it, do nothing


ACTIONS: dict[str, Action] = {
    "access_method.issued": Action.DELIVER,
    "access_method.reissued": Action.DELIVER,
    "access_method.card_encoding_required": Action.FLAG_CARD,
    "access_method.deleted": Action.CANCEL,
    "access_method.revoked": Action.RECORD,
    "access_method.delay_in_issuing": Action.ALERT_FRONT_DESK,
    "access_method.failed_to_issue": Action.ALERT_FRONT_DESK,
}

# The event types to subscribe a Seam webhook to (and to ask events/list for).
SUBSCRIBED_EVENT_TYPES: tuple[str, ...] = tuple(ACTIONS)


def action_for(event_type: str) -> Action:
    return ACTIONS.get(event_type, Action.RECORD)


def is_handled(event_type: str) -> bool:
    return event_type in ACTIONS
