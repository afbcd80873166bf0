"""The messages keycourier sends, and what each kind of message is.

A kind's value is stored in the ledger (`deliveries.kind`) and names its folder under templates/:
changing one takes a migration and a templates move. Everything the rest of app decides by a
message's kind (who reads it, whether it carries the key, where it is written from, what happens
when it fails) is a property read from the one table below, never a list of kinds kept elsewhere.

    kind                          for         credential  reads Seam  falls back  one per
    pin_code                      guest       code        yes         yes         guest
    instant_key                   guest       mobile_key  yes         yes         guest
    stay_times_changed            guest       -           yes         no          guest
    card_ready                    guest       -           yes         no          guest
    access_cancelled              guest       -           no          no          guest
    front_desk_card               front desk  -           yes         no          access method
    front_desk_issue_delayed      front desk  -           yes         no          access method
    front_desk_issue_failed       front desk  -           yes         no          access method
    front_desk_undelivered        front desk  -           no          no          guest
    front_desk_delivery_problem   front desk  -           no          no          guest
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Addressee(StrEnum):
    """Who reads a message. (Not `Audience`: that is a message's language and time zone.)"""

    GUEST = "guest"
    FRONT_DESK = "front_desk"


@dataclass(frozen=True)
class Traits:
    addressee: Addressee
    # The access-method mode whose credential the message hands the guest, and the template
    # variable that shows it; None for a message that must never show one.
    credential_mode: str | None = None
    credential_variable: str | None = None
    # Written from Seam's current state. The others are written from the ledger: the alerts
    # that a guest has no key must go out when Seam cannot answer, and a cancelled key is gone
    # from Seam.
    reads_seam: bool = True
    # When every try fails, the guest's other channel is tried and else the front desk told.
    may_fall_back: bool = False
    # One per guest (the ledger's recipient is the guest), else one per access method.
    per_guest: bool = True
    # A front-desk email saying what went wrong with a guest's messages ({{ problem }}).
    reports_problem: bool = False
    # The Seam event type a front-desk alert about issuing answers; it is moot once issued.
    issuing_alert_for: str | None = None
    # The template it is written from when it replaces a credential the guest was sent before.
    changed_template: str | None = None
    # About an access grant rather than one access method (filed under access_method_id ""):
    # written from the grant as Seam has it now (app/delivery/grant_alerts.py).
    about_grant: bool = False


class MessageKind(StrEnum):
    PIN_CODE = "pin_code"
    INSTANT_KEY = "instant_key"
    ACCESS_CANCELLED = "access_cancelled"
    STAY_TIMES_CHANGED = "stay_times_changed"
    CARD_READY = "card_ready"
    FRONT_DESK_CARD = "front_desk_card"
    FRONT_DESK_UNDELIVERED = "front_desk_undelivered"
    FRONT_DESK_DELIVERY_PROBLEM = "front_desk_delivery_problem"
    FRONT_DESK_ISSUE_DELAYED = "front_desk_issue_delayed"
    FRONT_DESK_ISSUE_FAILED = "front_desk_issue_failed"
    FRONT_DESK_CARD_ASSIGN = "front_desk_card_assign"
    FRONT_DESK_KEY_ERROR = "front_desk_key_error"
    FRONT_DESK_GRANT_INCOMPLETE = "front_desk_grant_incomplete"
    FRONT_DESK_DOOR_LOST = "front_desk_door_lost"

    @property
    def traits(self) -> Traits:
        return _TRAITS[self]

    @property
    def addressee(self) -> Addressee:
        return self.traits.addressee

    @property
    def is_for_guest(self) -> bool:
        return self.traits.addressee is Addressee.GUEST

    @property
    def carries_credential(self) -> bool:
        return self.traits.credential_mode is not None

    @property
    def credential_variable(self) -> str | None:
        return self.traits.credential_variable

    @property
    def reads_seam(self) -> bool:
        return self.traits.reads_seam

    @property
    def may_fall_back(self) -> bool:
        return self.traits.may_fall_back

    @property
    def per_guest(self) -> bool:
        return self.traits.per_guest

    @property
    def reports_problem(self) -> bool:
        return self.traits.reports_problem

    @property
    def about_grant(self) -> bool:
        return self.traits.about_grant

    @property
    def is_issuing_alert(self) -> bool:
        return self.traits.issuing_alert_for is not None

    @property
    def templates(self) -> tuple[str, ...]:
        """The template folders it is written from: its own, then its 'changed' variant."""
        changed = self.traits.changed_template
        return (self.value, changed) if changed else (self.value,)

    def template(self, *, code_changed: bool = False) -> str:
        """The template folder one message of this kind is written from."""
        if code_changed and self.traits.changed_template:
            return self.traits.changed_template
        return self.value

    @classmethod
    def for_mode(cls, mode: str) -> MessageKind | None:
        """The message that hands a guest an access method of `mode`, or None (cards, cloud
        keys: a card is handed over at the desk)."""
        return _FOR_MODE.get(mode)

    @classmethod
    def issuing_alert(cls, event_type: str) -> MessageKind:
        """The front-desk alert a Seam event about issuing calls for (KeyError for others)."""
        return _ISSUING_ALERTS[event_type]

    @classmethod
    def by_template(cls, template: str) -> MessageKind | None:
        """The kind a template folder writes, or None for a folder that is no message."""
        return _BY_TEMPLATE.get(template)


_GUEST = Addressee.GUEST
_DESK = Addressee.FRONT_DESK
_TRAITS: dict[MessageKind, Traits] = {
    MessageKind.PIN_CODE: Traits(
        _GUEST,
        credential_mode="code",
        credential_variable="pin_code",
        may_fall_back=True,
        changed_template="code_changed",
    ),
    MessageKind.INSTANT_KEY: Traits(
        _GUEST,
        credential_mode="mobile_key",
        credential_variable="instant_key_url",
        may_fall_back=True,
    ),
    # Guest notices carry no key: a failed one is not worth a fallback or the desk's attention.
    MessageKind.ACCESS_CANCELLED: Traits(_GUEST, reads_seam=False),
    MessageKind.STAY_TIMES_CHANGED: Traits(_GUEST),
    MessageKind.CARD_READY: Traits(_GUEST),
    MessageKind.FRONT_DESK_CARD: Traits(_DESK, per_guest=False),
    MessageKind.FRONT_DESK_UNDELIVERED: Traits(_DESK, reads_seam=False, reports_problem=True),
    MessageKind.FRONT_DESK_DELIVERY_PROBLEM: Traits(_DESK, reads_seam=False, reports_problem=True),
    MessageKind.FRONT_DESK_ISSUE_DELAYED: Traits(
        _DESK, per_guest=False, issuing_alert_for="access_method.delay_in_issuing"
    ),
    MessageKind.FRONT_DESK_ISSUE_FAILED: Traits(
        _DESK, per_guest=False, issuing_alert_for="access_method.failed_to_issue"
    ),
    # A card access method waits for a pre-registered card to be assigned to it (Seam's
    # is_assignment_required): the front desk assigns one (the console's card queue).
    MessageKind.FRONT_DESK_CARD_ASSIGN: Traits(_DESK, per_guest=False),
    # Seam reports errors on an access method that no event of its own announces: told once
    # per set of errors.
    MessageKind.FRONT_DESK_KEY_ERROR: Traits(_DESK, per_guest=False),
    # Seam could not create what a grant asked for; access to one of its doors was lost.
    MessageKind.FRONT_DESK_GRANT_INCOMPLETE: Traits(_DESK, per_guest=False, about_grant=True),
    MessageKind.FRONT_DESK_DOOR_LOST: Traits(_DESK, per_guest=False, about_grant=True),
}
_FOR_MODE = {mode: kind for kind in MessageKind if (mode := kind.traits.credential_mode)}
_ISSUING_ALERTS = {
    event_type: kind for kind in MessageKind if (event_type := kind.traits.issuing_alert_for)
}
_BY_TEMPLATE = {template: kind for kind in MessageKind for template in kind.templates}

# The guest messages that hand over the key itself (for the ledger's queries by kind).
CREDENTIAL_KINDS: tuple[MessageKind, ...] = tuple(
    kind for kind in MessageKind if kind.carries_credential
)
FRONT_DESK_KINDS: tuple[MessageKind, ...] = tuple(
    kind for kind in MessageKind if not kind.is_for_guest
)
