"""What the ops console and its JSON API read and write: deliveries found by guest, reservation
or destination, a delivery's timeline, open front-desk flags, alerts, the audit log and the
sign-in lockout. The only writer of `audit_log` and `ops_sign_in_failures`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.ledger.base import LedgerBase
from app.ledger.models import (
    AuditEntry,
    Delivery,
    DeliveryStatus,
    FlagStatus,
    FrontDeskFlag,
    ProviderEvent,
    SignInFailures,
)
from app.messages.kinds import FRONT_DESK_KINDS

# A delivery that reached nobody (failed, undelivered, or still unsent when the stay ended), or
# that waits on Seam to issue its access method again: the alerts page lists these beside the
# front-desk alerts.
ALERT_STATUSES: tuple[str, ...] = (
    DeliveryStatus.FAILED,
    DeliveryStatus.UNDELIVERED,
    DeliveryStatus.EXPIRED,
    DeliveryStatus.HELD,
)


@dataclass(frozen=True)
class DeliveryQuery:
    """A search of the deliveries: those whose guest name, reservation or access method id
    contains `text` (any case), whose id is `text`, or whose destination hashes to
    `destination_hash` (an exact phone number or email, app/delivery/destinations.py)."""

    text: str | None = None
    destination_hash: str | None = None
    status: str | None = None
    channel: str | None = None
    limit: int = 50
    offset: int = 0


class ConsoleStore(LedgerBase):
    # -- deliveries ------------------------------------------------------------------------

    def find_deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        """Newest first; attempts loaded."""
        statement = select(Delivery).options(selectinload(Delivery.attempts))
        matches = []
        if query.destination_hash is not None:
            matches.append(Delivery.destination_hash == query.destination_hash)
        if query.text:
            pattern = "%" + query.text.replace("\\", "\\\\").replace("%", r"\%").replace(
                "_", r"\_"
            ) + "%"  # fmt: skip
            matches += [
                Delivery.guest_name.ilike(pattern, escape="\\"),
                Delivery.reservation.ilike(pattern, escape="\\"),
                Delivery.access_method_id.ilike(pattern, escape="\\"),
            ]
            if query.text.isdigit() and len(query.text) < 10:
                matches.append(Delivery.id == int(query.text))
        if matches:
            statement = statement.where(or_(*matches))
        if query.status:
            statement = statement.where(Delivery.status == query.status)
        if query.channel:
            statement = statement.where(Delivery.channel == query.channel)
        statement = statement.order_by(Delivery.id.desc()).limit(query.limit).offset(query.offset)
        with self._transaction() as session:
            return list(session.scalars(statement))

    def delivery_timeline(self, delivery_id: int) -> tuple[Delivery, list[ProviderEvent]] | None:
        """The delivery with its attempts, and what the provider reported about it."""
        with self._transaction() as session:
            delivery = session.get(Delivery, delivery_id, options=[selectinload(Delivery.attempts)])
            if delivery is None:
                return None
            reports = session.scalars(
                select(ProviderEvent)
                .where(ProviderEvent.delivery_id == delivery_id)
                .order_by(ProviderEvent.id)
            )
            return delivery, list(reports)

    def same_key(self, delivery: Delivery, limit: int = 50) -> list[Delivery]:
        """The other deliveries of this access method (other channel, fallbacks, resends,
        front-desk messages), newest first."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .where(
                        Delivery.access_method_id == delivery.access_method_id,
                        Delivery.id != delivery.id,
                    )
                    .order_by(Delivery.id.desc())
                    .limit(limit)
                )
            )

    def alert_deliveries(self, limit: int = 100) -> list[Delivery]:
        """Front-desk alerts sent (or not) and guest deliveries that reached nobody."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .options(selectinload(Delivery.attempts))
                    .where(
                        or_(
                            Delivery.kind.in_(FRONT_DESK_KINDS),
                            Delivery.status.in_(ALERT_STATUSES),
                        )
                    )
                    .order_by(Delivery.id.desc())
                    .limit(limit)
                )
            )

    # -- front-desk flags ------------------------------------------------------------------

    def open_flag_list(self, limit: int = 200) -> list[FrontDeskFlag]:
        """The card queue: open flags, oldest first (the guest who has waited longest)."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(FrontDeskFlag)
                    .where(FrontDeskFlag.status == FlagStatus.OPEN)
                    .order_by(FrontDeskFlag.id)
                    .limit(limit)
                )
            )

    def get_flag(self, flag_id: int) -> FrontDeskFlag | None:
        with self._transaction() as session:
            return session.get(FrontDeskFlag, flag_id)

    # -- the audit log ---------------------------------------------------------------------

    def record_audit(
        self,
        *,
        actor: str,
        action: str,
        target: str | None,
        outcome: str,
        detail: str | None = None,
    ) -> int:
        row = AuditEntry(
            actor=actor[:100],
            action=action,
            target=None if target is None else target[:200],
            outcome=outcome[:40],
            detail=detail,
        )
        with self._transaction() as session:
            session.add(row)
        return row.id

    def audit_entries(self, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
                )
            )

    def get_audit(self, entry_id: int) -> AuditEntry | None:
        with self._transaction() as session:
            return session.get(AuditEntry, entry_id)

    # -- the sign-in lockout ---------------------------------------------------------------

    def locked_until(self, name_key: str, now: datetime) -> datetime | None:
        with self._transaction() as session:
            row = session.get(SignInFailures, name_key)
            if row is None or row.locked_until is None or row.locked_until <= now:
                return None
            return row.locked_until

    def sign_in_failed(
        self, name_key: str, *, now: datetime, max_failures: int, lockout: timedelta
    ) -> datetime | None:
        """Count a failure; returns when the name is locked until, once it is.

        Failures are counted over one lockout period from the first; the count starts again
        after a lockout ends or when the first failure is older than that.
        """
        for _ in range(2):  # a concurrent first failure may insert the row under us: once more
            try:
                with self._transaction() as session:
                    row = session.get(SignInFailures, name_key, with_for_update=True)
                    if row is None:
                        row = SignInFailures(name_key=name_key, failures=0, first_failed_at=now)
                        session.add(row)
                    expired = row.locked_until is not None and row.locked_until <= now
                    if expired or row.first_failed_at < now - lockout:
                        row.failures, row.first_failed_at, row.locked_until = 0, now, None
                    row.failures += 1
                    if row.failures >= max_failures:
                        row.locked_until = now + lockout
                    return row.locked_until
            except IntegrityError:
                continue
        return None  # pragma: no cover - the second try finds the row

    def sign_in_succeeded(self, name_key: str) -> None:
        with self._transaction() as session:
            session.execute(delete(SignInFailures).where(SignInFailures.name_key == name_key))
