"""What an access grant's deletion ends: its messages not sent yet and its open card flags.

Deliveries and flags name the grant they are for (`access_grant_id`); an access method's own
deletion is app/ledger/deliveries.py's `cancel_pending`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update

from app.ledger.base import LedgerBase
from app.ledger.delivery_states import DELIVERIES, Actor, move
from app.ledger.models import DeliveryStatus, FlagStatus, FrontDeskFlag, utcnow

# Not sent yet: waiting for a worker, or held while Seam re-programs the access method.
_UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.HELD)


class GrantStore(LedgerBase):
    def cancel_grant_pending(
        self, access_grant_id: str, reason: str, keep: Sequence[str] = ()
    ) -> int:
        """Supersede the grant's unsent (pending or held) deliveries, but those of the `keep`
        kinds. Returns how many."""
        with self._transaction() as session:
            result = session.execute(
                move(
                    Actor.PLANNER,
                    _UNSENT,
                    DeliveryStatus.SUPERSEDED,
                    DELIVERIES.c.access_grant_id == access_grant_id,
                    DELIVERIES.c.kind.not_in(keep),
                    error_message=reason,
                    updated_at=utcnow(),
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def close_grant_flags(self, access_grant_id: str) -> int:
        """Close the grant's open front-desk flags (its cards need no encoding or assignment
        any more). Returns how many."""
        with self._transaction() as session:
            result = session.execute(
                update(FrontDeskFlag)
                .where(
                    FrontDeskFlag.access_grant_id == access_grant_id,
                    FrontDeskFlag.status == FlagStatus.OPEN,
                )
                .values(status=FlagStatus.CLOSED, closed_at=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
