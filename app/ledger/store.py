"""The ledger's only writer.

Every state change is a method here, each in its own transaction, so that a row's status moves
only along the transitions this module allows. A database that cannot be reached becomes
`LedgerUnavailable`, which the web answers with 503 and the worker retries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from app.errors import LedgerUnavailable
from app.ledger.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    FlagStatus,
    FrontDeskFlag,
    utcnow,
)


@dataclass(frozen=True)
class NewEvent:
    """An incoming event as the ledger keeps it: ids and flags, never a credential."""

    svix_id: str | None
    seam_event_id: str | None
    event_type: str | None
    workspace_id: str | None = None
    access_method_id: str | None = None
    access_grant_ids: tuple[str, ...] = ()
    is_backup_code: bool = False
    occurred_at: str | None = None
    source: str = "webhook"
    status: EventStatus = EventStatus.RECEIVED
    detail: str | None = None


@dataclass(frozen=True)
class Recorded:
    event_id: int
    duplicate: bool
    status: EventStatus

    @property
    def needs_enqueue(self) -> bool:
        # A duplicate whose first delivery never reached the broker must still be queued.
        return self.status == EventStatus.RECEIVED


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


@dataclass(frozen=True)
class AttemptResult:
    started_at: datetime
    outcome: AttemptOutcome
    provider: str
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database_url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        database_url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=3,
        connect_args={"connect_timeout": 3},
    )


def _sqlite_pragmas(dbapi_connection: object, _record: ConnectionPoolEntry) -> None:
    # WAL lets the web and the worker read while the other writes; busy_timeout waits for locks.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, database_url: str) -> Ledger:
        return cls(make_engine(database_url))

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as exc:
            raise LedgerUnavailable(f"ledger unavailable: {type(exc.orig).__name__}") from exc

    def ping(self) -> None:
        with self._transaction() as session:
            session.execute(text("SELECT 1"))

    # -- events ----------------------------------------------------------------------------

    def record_event(self, new: NewEvent) -> Recorded:
        """Insert an event, or report the one already recorded under the same ids."""
        row = Event(
            svix_id=new.svix_id,
            seam_event_id=new.seam_event_id,
            event_type=new.event_type,
            workspace_id=new.workspace_id,
            access_method_id=new.access_method_id,
            access_grant_ids=list(new.access_grant_ids),
            is_backup_code=new.is_backup_code,
            occurred_at=new.occurred_at,
            source=new.source,
            status=new.status,
            detail=new.detail,
        )
        try:
            with self._transaction() as session:
                session.add(row)
            return Recorded(row.id, duplicate=False, status=EventStatus(row.status))
        except IntegrityError:
            existing = self._find_event(new.svix_id, new.seam_event_id)
            if existing is None:  # pragma: no cover - a unique clash always leaves a row
                raise
            return Recorded(existing.id, duplicate=True, status=EventStatus(existing.status))

    def _find_event(self, svix_id: str | None, seam_event_id: str | None) -> Event | None:
        with self._transaction() as session:
            for column, value in ((Event.svix_id, svix_id), (Event.seam_event_id, seam_event_id)):
                if value is not None:
                    found = session.scalar(select(Event).where(column == value))
                    if found is not None:
                        return found
        return None

    def mark_event_queued(self, event_id: int) -> None:
        with self._transaction() as session:
            session.execute(
                update(Event)
                .where(Event.id == event_id, Event.status == EventStatus.RECEIVED)
                .values(status=EventStatus.QUEUED, queued_at=utcnow())
            )

    def get_event(self, event_id: int) -> Event | None:
        with self._transaction() as session:
            return session.get(Event, event_id)

    def finish_event(self, event_id: int, status: EventStatus, detail: str | None = None) -> None:
        with self._transaction() as session:
            session.execute(
                update(Event)
                .where(Event.id == event_id)
                .values(status=status, detail=detail, processed_at=utcnow())
            )

    def seen_seam_event_ids(self, seam_event_ids: Sequence[str]) -> set[str]:
        with self._transaction() as session:
            found = session.scalars(
                select(Event.seam_event_id).where(Event.seam_event_id.in_(seam_event_ids))
            )
            return {value for value in found if value is not None}

    # -- deliveries ------------------------------------------------------------------------

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
        with self._transaction() as session:
            result = session.execute(
                update(Delivery)
                .where(
                    Delivery.access_method_id == access_method_id,
                    Delivery.kind == kind,
                    Delivery.credential_fingerprint != keep_fingerprint,
                    Delivery.status == DeliveryStatus.PENDING,
                )
                .values(status=DeliveryStatus.SUPERSEDED, updated_at=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def cancel_pending(self, access_method_id: str, reason: str) -> int:
        with self._transaction() as session:
            result = session.execute(
                update(Delivery)
                .where(
                    Delivery.access_method_id == access_method_id,
                    Delivery.status == DeliveryStatus.PENDING,
                )
                .values(status=DeliveryStatus.SUPERSEDED, error_message=reason, updated_at=utcnow())
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

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        with self._transaction() as session:
            return session.get(Delivery, delivery_id, options=[selectinload(Delivery.attempts)])

    def claim_delivery(self, delivery_id: int) -> Delivery | None:
        """Move a pending delivery to sending, atomically; None if someone else has it.

        The claim is committed before any provider is called, so the ledger knows a send may
        have happened even if this process dies mid-call.
        """
        with self._transaction() as session:
            result = session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.SENDING, updated_at=utcnow())
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return session.get(Delivery, delivery_id)

    def release_delivery(self, delivery_id: int, status: DeliveryStatus, reason: str) -> None:
        """Give a claimed delivery back (pending) or end it (superseded, skipped) unsent."""
        with self._transaction() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.SENDING)
                .values(status=status, error_message=reason, updated_at=utcnow())
            )

    def record_attempt(self, delivery_id: int, result: AttemptResult) -> None:
        """Record one provider call and move the delivery to what it implies."""
        finished = utcnow()
        status = {
            AttemptOutcome.SENT: DeliveryStatus.SENT,
            AttemptOutcome.DRY_RUN: DeliveryStatus.DRY_RUN,
            AttemptOutcome.TRANSIENT_ERROR: DeliveryStatus.PENDING,
            AttemptOutcome.PERMANENT_ERROR: DeliveryStatus.FAILED,
        }[result.outcome]
        delivered = status in (DeliveryStatus.SENT, DeliveryStatus.DRY_RUN)
        with self._transaction() as session:
            session.add(
                Attempt(
                    delivery_id=delivery_id,
                    started_at=result.started_at,
                    finished_at=finished,
                    duration_ms=int((finished - result.started_at).total_seconds() * 1000),
                    outcome=result.outcome,
                    provider=result.provider,
                    provider_message_id=result.provider_message_id,
                    error_code=result.error_code,
                    error_message=result.error_message,
                )
            )
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.SENDING)
                .values(
                    status=status,
                    provider_message_id=result.provider_message_id,
                    error_code=result.error_code,
                    error_message=result.error_message,
                    sent_at=finished if delivered else None,
                    updated_at=finished,
                )
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

    # -- front-desk flags ------------------------------------------------------------------

    def open_flag(
        self,
        access_method_id: str,
        *,
        reason: str,
        access_grant_id: str | None,
        guest_name: str | None,
        event_id: int | None,
    ) -> tuple[int, bool]:
        """Open a flag for this access method unless one is open. Returns (id, created)."""
        row = FrontDeskFlag(
            access_method_id=access_method_id,
            access_grant_id=access_grant_id,
            guest_name=guest_name,
            reason=reason,
            opened_by_event_id=event_id,
        )
        try:
            with self._transaction() as session:
                session.add(row)
            return row.id, True
        except IntegrityError:
            with self._transaction() as session:
                existing = session.scalar(
                    select(FrontDeskFlag.id).where(
                        FrontDeskFlag.access_method_id == access_method_id,
                        FrontDeskFlag.status == FlagStatus.OPEN,
                    )
                )
            if existing is None:  # pragma: no cover - a unique clash always leaves a row
                raise
            return existing, False

    def close_flags(self, access_method_id: str) -> int:
        with self._transaction() as session:
            result = session.execute(
                update(FrontDeskFlag)
                .where(
                    FrontDeskFlag.access_method_id == access_method_id,
                    FrontDeskFlag.status == FlagStatus.OPEN,
                )
                .values(status=FlagStatus.CLOSED, closed_at=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def flags(self, access_method_id: str) -> list[FrontDeskFlag]:
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(FrontDeskFlag)
                    .where(FrontDeskFlag.access_method_id == access_method_id)
                    .order_by(FrontDeskFlag.id)
                )
            )
