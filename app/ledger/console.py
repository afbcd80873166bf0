"""What the ops console and its JSON API read and write: deliveries found by guest, reservation
or destination, a delivery's timeline, open front-desk flags, alerts and the audit log (the only
writer of `audit_log`). The sign-in lockout and the console's sessions are in
app/ledger/sign_in.py, which ConsoleStore is built on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    or_,
    select,
)
from sqlalchemy.orm import selectinload

from app.ledger.models import (
    MAX_ROW_ID,
    AuditEntry,
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    FlagStatus,
    FrontDeskFlag,
    ProviderEvent,
)
from app.ledger.scope import HotelPlaces, Scope, flag_in_scope, in_hotel, in_scope
from app.ledger.sign_in import SignInStore
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
    """A search of the deliveries in `scope`: those whose guest name, reservation or access
    method id contains `text` (any case), whose id is `text`, or whose destination hashes to
    `destination_hash` or one of `destination_hashes` (an exact phone number or email, a
    national number read in each hotel's country: app/delivery/destinations.py); with `hotel`,
    only that hotel's."""

    scope: Scope
    text: str | None = None
    destination_hash: str | None = None
    destination_hashes: tuple[str, ...] = ()
    status: str | None = None
    channel: str | None = None
    hotel: HotelPlaces | None = None
    # The hotel's name, as asked for (what the audit log and the page show).
    hotel_name: str | None = None
    limit: int = 50
    offset: int = 0


class ConsoleStore(SignInStore):
    """The console's reads and the audit log; the sign-in lockout and the sessions are
    SignInStore's (app/ledger/sign_in.py)."""

    # -- deliveries ------------------------------------------------------------------------

    def find_deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        """Newest first; attempts loaded."""
        statement = (
            select(Delivery).options(selectinload(Delivery.attempts)).where(in_scope(query.scope))
        )
        if query.hotel is not None:
            statement = statement.where(in_hotel(query.hotel))
        matches: list[ColumnElement[bool]] = []
        hashes = sorted({*query.destination_hashes, *filter(None, [query.destination_hash])})
        if hashes:
            matches.append(Delivery.destination_hash.in_(hashes))
        if query.text:
            pattern = "%" + query.text.replace("\\", "\\\\").replace("%", r"\%").replace(
                "_", r"\_"
            ) + "%"  # fmt: skip
            matches += [
                Delivery.guest_name.ilike(pattern, escape="\\"),
                Delivery.reservation.ilike(pattern, escape="\\"),
                Delivery.access_method_id.ilike(pattern, escape="\\"),
            ]
            if query.text.isascii() and query.text.isdigit() and len(query.text) < 10:
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

    def delivery_timeline(
        self, delivery_id: int, scope: Scope
    ) -> tuple[Delivery, list[ProviderEvent]] | None:
        """The delivery with its attempts, and what the provider reported about it; None when
        there is none in `scope` by that id."""
        if not 0 < delivery_id <= MAX_ROW_ID:
            return None
        with self._transaction() as session:
            delivery = session.scalars(
                select(Delivery)
                .options(selectinload(Delivery.attempts))
                .where(Delivery.id == delivery_id, in_scope(scope))
            ).first()
            if delivery is None:
                return None
            reports = session.scalars(
                select(ProviderEvent)
                .where(ProviderEvent.delivery_id == delivery_id)
                .order_by(ProviderEvent.id)
            )
            return delivery, list(reports)

    def sees_delivery(self, delivery_id: int, scope: Scope) -> bool:
        """Whether there is a delivery by that id in `scope`."""
        if not 0 < delivery_id <= MAX_ROW_ID:
            return False
        with self._transaction() as session:
            found = session.scalar(
                select(Delivery.id).where(Delivery.id == delivery_id, in_scope(scope))
            )
            return found is not None

    def same_key(self, delivery: Delivery, scope: Scope, limit: int = 50) -> list[Delivery]:
        """The other deliveries of this access method in `scope` (other channel, fallbacks,
        resends, front-desk messages), newest first."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .where(
                        Delivery.access_method_id == delivery.access_method_id,
                        Delivery.id != delivery.id,
                        in_scope(scope),
                    )
                    .order_by(Delivery.id.desc())
                    .limit(limit)
                )
            )

    def alert_deliveries(self, scope: Scope, limit: int = 100) -> list[Delivery]:
        """Front-desk alerts sent (or not) and guest deliveries that reached nobody, in
        `scope`."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .options(selectinload(Delivery.attempts))
                    .where(
                        or_(
                            Delivery.kind.in_(FRONT_DESK_KINDS),
                            Delivery.status.in_(ALERT_STATUSES),
                        ),
                        in_scope(scope),
                    )
                    .order_by(Delivery.id.desc())
                    .limit(limit)
                )
            )

    def poisoned_events(self, limit: int = 100) -> list[Event]:
        """Events set aside after too many failed tries, newest first, with their reasons."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Event)
                    .where(Event.status == EventStatus.POISONED)
                    .order_by(Event.id.desc())
                    .limit(limit)
                )
            )

    # -- front-desk flags ------------------------------------------------------------------

    def open_flag_list(self, scope: Scope, limit: int = 200) -> list[FrontDeskFlag]:
        """The card queue: open flags in `scope`, oldest first (the guest who has waited
        longest)."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(FrontDeskFlag)
                    .where(FrontDeskFlag.status == FlagStatus.OPEN, flag_in_scope(scope))
                    .order_by(FrontDeskFlag.id)
                    .limit(limit)
                )
            )

    def get_flag(self, flag_id: int, scope: Scope) -> FrontDeskFlag | None:
        """The flag, if `scope` sees it."""
        if not 0 < flag_id <= MAX_ROW_ID:
            return None
        with self._transaction() as session:
            return session.scalars(
                select(FrontDeskFlag).where(FrontDeskFlag.id == flag_id, flag_in_scope(scope))
            ).first()

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
        if not 0 < entry_id <= MAX_ROW_ID:
            return None
        with self._transaction() as session:
            return session.get(AuditEntry, entry_id)
