"""Building the ledger row of a delivery to plan: the one place a NewDelivery is made.

Whatever plans a message (an event's credential, a notice, a fallback, a front-desk alert, the
desk's resend) says what it is and to whom; this module decides the rest the same way for all:
the destination kept only masked and as a search hash, the recipient in the unique key (the
guest, or no one for a front-desk message about the access method as a whole), and a delivery
with nowhere to go recorded as skipped, with why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from app.delivery.destinations import destination_hash
from app.ledger.models import Delivery, DeliveryStatus, space_list
from app.ledger.store import NewDelivery
from app.messages.kinds import MessageKind
from app.observability.masking import mask_destination
from app.ports import AccessGrant, Guest


@dataclass(frozen=True)
class Destination:
    """Where a message goes, as the ledger keeps it: masked for people to read, and a keyed
    hash for the console's search (app/delivery/destinations.py); never in full."""

    masked: str
    hash: str | None = field(repr=False)

    @classmethod
    def of(cls, address: str | None, search_key: bytes) -> Destination | None:
        """`address` (a phone number or an email address) as the ledger keeps it; None for none."""
        if not address:
            return None
        return cls(mask_destination(address), destination_hash(search_key, address))

    @classmethod
    def kept_by(cls, delivery: Delivery) -> Destination | None:
        """Where an earlier delivery went, for a message that follows it on the same channel."""
        if delivery.destination_masked is None:
            return None
        return cls(delivery.destination_masked, delivery.destination_hash)


@dataclass(frozen=True)
class About:
    """Whom and which stay a delivery is about, as the ledger files it (no contact details)."""

    access_grant_id: str | None = None
    user_identity_id: str | None = None
    guest_name: str | None = None
    reservation: str | None = None
    # Where the stay is (the hotel): the Seam workspace and the grant's spaces.
    workspace_id: str | None = None
    space_ids: tuple[str, ...] = ()

    @classmethod
    def stay(
        cls,
        grant: AccessGrant | None,
        guest: Guest | None,
        name: str | None,
        *,
        workspace_id: str | None = None,
    ) -> About:
        """A guest's stay as Seam describes it now; `name` is what the desk calls the guest,
        `workspace_id` the access method's workspace."""
        return cls(
            access_grant_id=grant.access_grant_id if grant else None,
            user_identity_id=guest.user_identity_id if guest else None,
            guest_name=name,
            reservation=reservation_of(grant) if grant else None,
            workspace_id=workspace_id,
            space_ids=grant.space_ids if grant else (),
        )

    @classmethod
    def like(cls, delivery: Delivery) -> About:
        """What an earlier delivery was about, for a message that follows it."""
        return cls(
            access_grant_id=delivery.access_grant_id,
            user_identity_id=delivery.user_identity_id,
            guest_name=delivery.guest_name,
            reservation=delivery.reservation,
            workspace_id=delivery.workspace_id,
            space_ids=delivery.space_id_list,
        )


def reservation_of(grant: AccessGrant) -> str | None:
    """The reservation a grant is for, as the desk searches it."""
    return grant.reservation_key or grant.access_grant_key


def new_delivery(
    kind: MessageKind,
    *,
    access_method_id: str,
    channel: str,
    credential_fingerprint: str,
    event_id: int | None,
    about: About,
    destination: Destination | None,
    no_destination: str | None = None,
    fallback_for_id: int | None = None,
    expires_at: datetime | None = None,
) -> NewDelivery:
    """A `kind` message on `channel` to plan. Without a destination it is recorded as skipped,
    `no_destination` (else 'no <channel> destination configured') saying why."""
    per_guest = kind.per_guest and about.user_identity_id is not None
    return NewDelivery(
        access_method_id=access_method_id,
        kind=kind,
        channel=channel,
        credential_fingerprint=credential_fingerprint,
        event_id=event_id,
        access_grant_id=about.access_grant_id,
        user_identity_id=about.user_identity_id,
        guest_name=about.guest_name,
        reservation=about.reservation,
        destination_masked=destination.masked if destination else None,
        destination_hash=destination.hash if destination else None,
        status=DeliveryStatus.PENDING if destination else DeliveryStatus.SKIPPED,
        error_message=(
            None if destination else no_destination or f"no {channel} destination configured"
        ),
        fallback_for_id=fallback_for_id,
        expires_at=expires_at,
        recipient=(about.user_identity_id or "") if per_guest else "",
        workspace_id=about.workspace_id,
        space_ids=space_list(about.space_ids),
    )
