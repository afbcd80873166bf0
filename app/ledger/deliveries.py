"""Deliveries and their attempts: every state change a delivery can make, and nothing else.

    pending ──claim──> sending ──begin_attempt──> (provider call) ──finish_attempt──> sent
       ^                  │                                           ├──> failed
       │                  │                                           ├──> pending (retry later)
       │                  │                                           └──> unknown
       │                  └──release──> pending | superseded | skipped
       └───── unknown ──claim (resolve first)──> sending ...
    sending whose lease expired ──recover──> unknown (a call was in flight) | pending

A claim and an in-flight attempt are committed before any provider is called, so a process
that dies mid-call leaves a record saying a message may have gone out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.ledger.base import LedgerBase
from app.ledger.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus, utcnow

# A guest holds (or will hold) the credential through a delivery in one of these.
LIVE = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.UNKNOWN,
    DeliveryStatus.SENT,
    DeliveryStatus.DRY_RUN,
)


@dataclass(frozen=True)
class NewDelivery:
    access_method_id: str
    kind: str
    channel: str
    credential_fingerprint: str
    event_id: int | None
    access_grant_id: str | None
    user_identity_id: str | None
    guest_name: str | None
    reservation: str | None
    destination_masked: str | None
    status: DeliveryStatus = DeliveryStatus.PENDING
    error_message: str | None = None
    fallback_for_id: int | None = None


@dataclass(frozen=True)
class Claimed:
    delivery: Delivery
    # The attempt whose answer was lost, when the claim took an `unknown` delivery.
    unresolved: Attempt | None


@dataclass(frozen=True)
class AttemptEnd:
    """How a provider call ended, and what it means for its delivery."""

    outcome: AttemptOutcome
    status: DeliveryStatus
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    next_attempt_at: datetime | None = None
    retry_deadline: datetime | None = None


class DeliveryStore(LedgerBase):
    def plan_delivery(self, new: NewDelivery) -> tuple[int, bool]:
        """Insert a delivery unless one exists for this credential and channel.

        Returns the delivery's id and whether it was created now.
        """
        row = Delivery(
            access_method_id=new.access_method_id,
            kind=new.kind,
            channel=new.channel,
            credential_fingerprint=new.credential_fingerprint,
            event_id=new.event_id,
            access_grant_id=new.access_grant_id,
            user_identity_id=new.user_identity_id,
            guest_name=new.guest_name,
            reservation=new.reservation,
            destination_masked=new.destination_masked,
            status=new.status,
            error_message=new.error_message,
            fallback_for_id=new.fallback_for_id,
        )
        try:
            with self._transaction() as session:
                session.add(row)
            return row.id, True
        except IntegrityError:
            with self._transaction() as session:
                existing = session.scalar(
                    select(Delivery.id).where(
                        Delivery.access_method_id == new.access_method_id,
                        Delivery.kind == new.kind,
                        Delivery.credential_fingerprint == new.credential_fingerprint,
                        Delivery.channel == new.channel,
                    )
                )
            if existing is None:  # pragma: no cover - a unique clash always leaves a row
                raise
            return existing, False

    def supersede_pending(self, access_method_id: str, kind: str, keep_fingerprint: str) -> int:
        """Pending deliveries of an older credential will never go out. Returns how many."""
        return self._end_pending(
            DeliveryStatus.SUPERSEDED,
            "a newer credential replaced it",
            Delivery.access_method_id == access_method_id,
            Delivery.kind == kind,
            Delivery.credential_fingerprint != keep_fingerprint,
        )

    def cancel_pending(self, access_method_id: str, reason: str) -> int:
        return self._end_pending(
            DeliveryStatus.SUPERSEDED, reason, Delivery.access_method_id == access_method_id
        )

    def _end_pending(self, status: DeliveryStatus, reason: str, *where: object) -> int:
        with self._transaction() as session:
            result = session.execute(
                update(Delivery)
                .where(Delivery.status == DeliveryStatus.PENDING, *where)  # type: ignore[arg-type]
                .values(status=status, error_message=reason, updated_at=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def pending_delivery_ids(self, access_method_id: str) -> list[int]:
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery.id)
                    .where(
                        Delivery.access_method_id == access_method_id,
                        Delivery.status == DeliveryStatus.PENDING,
                    )
                    .order_by(Delivery.id)
                )
            )

    def guest_had_other_credential(self, delivery: Delivery) -> bool:
        """Whether this guest was already sent another credential of this access method."""
        with self._transaction() as session:
            found = session.scalar(
                select(Delivery.id).where(
                    Delivery.access_method_id == delivery.access_method_id,
                    Delivery.kind == delivery.kind,
                    Delivery.channel == delivery.channel,
                    Delivery.user_identity_id == delivery.user_identity_id,
                    Delivery.credential_fingerprint != delivery.credential_fingerprint,
                    Delivery.status.in_((DeliveryStatus.SENT, DeliveryStatus.DRY_RUN)),
                )
            )
            return found is not None

    def credential_is_live(self, delivery: Delivery) -> bool:
        """Whether any channel still delivers (or delivered) this delivery's credential."""
        with self._transaction() as session:
            found = session.scalar(
                select(Delivery.id).where(
                    Delivery.access_method_id == delivery.access_method_id,
                    Delivery.kind == delivery.kind,
                    Delivery.credential_fingerprint == delivery.credential_fingerprint,
                    Delivery.status.in_(LIVE),
                )
            )
            return found is not None

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        with self._transaction() as session:
            return session.get(Delivery, delivery_id, options=[selectinload(Delivery.attempts)])

    def siblings(self, delivery: Delivery) -> list[Delivery]:
        """Every delivery of the same credential (any channel, any message), this one included."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .options(selectinload(Delivery.attempts))
                    .where(
                        Delivery.access_method_id == delivery.access_method_id,
                        Delivery.credential_fingerprint == delivery.credential_fingerprint,
                    )
                    .order_by(Delivery.id)
                )
            )

    # -- claiming and attempts -------------------------------------------------------------

    def claim_delivery(self, delivery_id: int, lease: timedelta) -> Claimed | None:
        """Take a due pending (or unknown) delivery for `lease`; None if it is not ours to send."""
        now = utcnow()
        with self._transaction() as session:
            current = session.scalar(
                select(Delivery)
                .options(selectinload(Delivery.attempts))
                .where(Delivery.id == delivery_id)
            )
            if current is None or current.status not in (
                DeliveryStatus.PENDING,
                DeliveryStatus.UNKNOWN,
            ):
                return None
            if current.next_attempt_at is not None and current.next_attempt_at > now:
                return None
            previous = current.status
            result = session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == previous)
                .values(status=DeliveryStatus.SENDING, lease_expires_at=now + lease, updated_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another worker claimed it between our read and our write
            unresolved = None
            if previous == DeliveryStatus.UNKNOWN:
                unresolved = next(
                    (a for a in reversed(current.attempts) if a.outcome == AttemptOutcome.UNKNOWN),
                    None,
                )
            # Detach before mirroring the update, so the session does not write it again.
            session.expunge(current)
            current.status = DeliveryStatus.SENDING
            current.lease_expires_at = now + lease
            return Claimed(current, unresolved)

    def release_delivery(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        reason: str,
        *,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Give a claimed delivery back (pending, unknown) or end it unsent."""
        with self._transaction() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.SENDING)
                .values(
                    status=status,
                    error_message=reason,
                    next_attempt_at=next_attempt_at,
                    lease_expires_at=None,
                    updated_at=utcnow(),
                )
            )

    def begin_attempt(
        self, delivery_id: int, provider: str, message_fingerprint: str | None, lease: timedelta
    ) -> int:
        """Record that a provider call is about to be made (committed before it is)."""
        now = utcnow()
        attempt = Attempt(
            delivery_id=delivery_id,
            started_at=now,
            outcome=AttemptOutcome.IN_FLIGHT,
            provider=provider,
            message_fingerprint=message_fingerprint,
        )
        with self._transaction() as session:
            session.add(attempt)
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(lease_expires_at=now + lease, updated_at=now)
            )
        return attempt.id

    def finish_attempt(self, attempt_id: int, end: AttemptEnd) -> None:
        """Record how a provider call ended and move its delivery on, in one transaction."""
        now = utcnow()
        with self._transaction() as session:
            attempt = session.get(Attempt, attempt_id)
            assert attempt is not None
            attempt.outcome = end.outcome
            attempt.finished_at = now
            attempt.duration_ms = int((now - attempt.started_at).total_seconds() * 1000)
            attempt.provider_message_id = end.provider_message_id
            attempt.error_code = end.error_code
            attempt.error_message = end.error_message
            delivered = end.status in (DeliveryStatus.SENT, DeliveryStatus.DRY_RUN)
            values: dict[str, object] = {
                "status": end.status,
                "provider_message_id": end.provider_message_id,
                "error_code": end.error_code,
                "error_message": end.error_message,
                "next_attempt_at": end.next_attempt_at,
                "lease_expires_at": None,
                "updated_at": now,
                "sent_at": now if delivered else None,
            }
            if end.retry_deadline is not None:
                values["retry_deadline"] = end.retry_deadline
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id == attempt.delivery_id, Delivery.status == DeliveryStatus.SENDING
                )
                .values(**values)
            )

    def settle_unknown(self, attempt_id: int, provider_message_id: str | None) -> None:
        """Record what the provider said about a call whose answer was lost.

        Found: the attempt and its delivery are sent. Not found: the attempt is marked as never
        received, and the claimed delivery goes on to send again.
        """
        now = utcnow()
        with self._transaction() as session:
            attempt = session.get(Attempt, attempt_id)
            assert attempt is not None
            if provider_message_id is None:
                attempt.outcome = AttemptOutcome.TRANSIENT_ERROR
                attempt.error_code = "not_received"
                attempt.error_message = "the provider has no such message: sending again"
                return
            attempt.outcome = AttemptOutcome.SENT
            attempt.provider_message_id = provider_message_id
            attempt.error_code = attempt.error_message = None
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id == attempt.delivery_id, Delivery.status == DeliveryStatus.SENDING
                )
                .values(
                    status=DeliveryStatus.SENT,
                    provider_message_id=provider_message_id,
                    error_code=None,
                    error_message=None,
                    lease_expires_at=None,
                    sent_at=now,
                    updated_at=now,
                )
            )

    # -- the sweeper's view ----------------------------------------------------------------

    def recover_expired_leases(self, now: datetime) -> list[int]:
        """Take back deliveries whose worker stopped answering: unknown if a call was in flight."""
        recovered = []
        with self._transaction() as session:
            expired = session.scalars(
                select(Delivery)
                .options(selectinload(Delivery.attempts))
                .where(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_expires_at < now)
                .with_for_update(skip_locked=True)
            )
            for delivery in expired:
                in_flight = [a for a in delivery.attempts if a.outcome == AttemptOutcome.IN_FLIGHT]
                for attempt in in_flight:
                    attempt.outcome = AttemptOutcome.UNKNOWN
                    attempt.error_message = "the worker stopped before the provider answered"
                delivery.status = DeliveryStatus.UNKNOWN if in_flight else DeliveryStatus.PENDING
                delivery.lease_expires_at = None
                delivery.updated_at = now
                recovered.append(delivery.id)
        return recovered

    def due_delivery_ids(self, now: datetime, waited_since: datetime, limit: int) -> list[int]:
        """Pending or unknown deliveries that are due and were not handed on recently."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery.id)
                    .where(
                        Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.UNKNOWN)),
                        or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                        or_(Delivery.enqueued_at.is_(None), Delivery.enqueued_at < waited_since),
                    )
                    .order_by(Delivery.id)
                    .limit(limit)
                )
            )

    def mark_deliveries_enqueued(self, delivery_ids: Sequence[int]) -> None:
        if not delivery_ids:
            return
        with self._transaction() as session:
            session.execute(
                update(Delivery).where(Delivery.id.in_(delivery_ids)).values(enqueued_at=utcnow())
            )

    def recent_deliveries(self, limit: int = 20) -> list[Delivery]:
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .options(selectinload(Delivery.attempts))
                    .order_by(Delivery.id.desc())
                    .limit(limit)
                )
            )
