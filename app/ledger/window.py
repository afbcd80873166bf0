"""The ledger's side of the delivery window (app/delivery/window.py): scheduled deliveries.

A scheduled delivery is an ordinary pending row with `not_before` (claimed by nobody before
then: app/ledger/sending.py) and `expires_at` (the grant's ends_at). Beat's sweeper hands it
to a worker once it is due (`due_delivery_ids`) and closes it as `expired`, unsent, once the
stay is over (`expire_overdue`). Nothing waits in the broker: a Celery countdown longer than
Redis's visibility timeout would run twice, and a broker without persistence forgets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, bindparam, exists, false, select, update

from app.ledger.base import LedgerBase
from app.ledger.delivery_states import Actor, move
from app.ledger.models import AttemptOutcome, Delivery, DeliveryStatus
from app.ledger.sending import ATTEMPTS, DELIVERIES

# What expiry may close: not yet sent, and nobody sending it right now (a claimed delivery's
# worker finishes its call; an `unknown` one may have gone out, and is never resent after; a
# `held` one waits for Seam to issue again, which no longer matters once the stay is over).
_EXPIRABLE = (DeliveryStatus.PENDING, DeliveryStatus.UNKNOWN, DeliveryStatus.HELD)
_EXPIRED_REASON = "the guest's stay ended before it could be sent"
_HAS_UNKNOWN_ATTEMPT = (
    exists()
    .where(
        ATTEMPTS.c.delivery_id == DELIVERIES.c.id,
        ATTEMPTS.c.outcome == AttemptOutcome.UNKNOWN,
    )
    .correlate(DELIVERIES)
)
_EXPIRE = move(
    Actor.SWEEPER, _EXPIRABLE, DeliveryStatus.EXPIRED,
    DELIVERIES.c.expires_at <= bindparam("b_now"),
    error_message=_EXPIRED_REASON, lease_expires_at=None, updated_at=bindparam("b_now"),
).returning(DELIVERIES.c.id, DELIVERIES.c.channel)  # fmt: skip


@dataclass(frozen=True)
class Expired:
    delivery_id: int
    channel: str


@dataclass(frozen=True)
class Rescheduled:
    # Not-yet-sent deliveries given the new window.
    retimed: int
    # Of those, expired ones brought back because the stay now ends later.
    revived: int


class WindowStore(LedgerBase):
    def expire_overdue(self, now: datetime) -> list[Expired]:
        """Close as expired every unsent delivery whose window ended (sweeper)."""
        with self._connection() as connection:
            rows = connection.execute(_EXPIRE, {"b_now": now}).all()
        return [Expired(row.id, row.channel) for row in rows]

    def reschedule_grant(
        self,
        access_grant_id: str,
        kinds: Sequence[str],
        not_before: datetime | None,
        expires_at: datetime | None,
        now: datetime,
    ) -> Rescheduled:
        """Give the grant's not-yet-sent deliveries of `kinds` a new window (Seam changed the
        grant's times: access_grant.access_times_changed).

        Pending ones take the new times (a retry's next_attempt_at is kept). Expired ones come
        back as pending when the new window has not ended: the stay was extended and the guest
        still needs the key (compose still checks the credential against Seam before sending).
        One whose send may have gone out (an unknown attempt) is never brought back. With an
        `expires_at` already past, the sweeper expires them at its next run.
        """
        if not kinds:
            return Rescheduled(0, 0)
        if expires_at is None or expires_at > now:
            revivable: ColumnElement[bool] = and_(
                DELIVERIES.c.status == DeliveryStatus.EXPIRED, ~_HAS_UNKNOWN_ATTEMPT
            )
        else:
            revivable = false()
        of_grant = and_(
            DELIVERIES.c.access_grant_id == access_grant_id, DELIVERIES.c.kind.in_(kinds)
        )
        with self._connection() as connection:
            revived = (
                connection.execute(select(DELIVERIES.c.id).where(of_grant, revivable))
                .scalars()
                .all()
            )
            window = {
                "not_before": not_before,
                "expires_at": expires_at,
                # handed to a worker afresh by the sweeper once due
                "enqueued_at": None,
                "updated_at": now,
            }
            retimed = connection.execute(
                update(DELIVERIES)
                .where(of_grant, DELIVERIES.c.status == DeliveryStatus.PENDING)
                .values(**window)
            ).rowcount
            retimed += connection.execute(
                move(
                    Actor.SCHEDULER,
                    (DeliveryStatus.EXPIRED,),
                    DeliveryStatus.PENDING,
                    of_grant,
                    revivable,
                    error_message=None,
                    **window,
                )
            ).rowcount
        return Rescheduled(int(retimed), len(revived))


def scheduled_until(delivery: Delivery, now: datetime) -> datetime | None:
    """When a pending delivery waiting for its window is released; None if it is not waiting."""
    if delivery.status != DeliveryStatus.PENDING or delivery.not_before is None:
        return None
    return delivery.not_before if delivery.not_before > now else None
